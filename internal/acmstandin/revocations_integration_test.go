//go:build integration

package acmstandin_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/certferry/certferry/internal/acmstandin"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

// RevokeCertificate as the API reference and the ACM User Guide ("Revoke
// an AWS Certificate Manager public certificate") describe it, through the
// SDK, behind the model check: refusals first (never exported, not
// exportable, a reason not accepted for the type), then the revocation
// (REVOKED, RevokedAt, RevocationReason; no export, no renewal, no second
// revocation) and its "ACM Certificate Revoked" event.
func TestRevokeCertificate(t *testing.T) {
	e := newEnv(t)
	p, err := rig.NewFaultProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	_, _ = testkit.UseACMStandIns(p)
	revs := testkit.UseACMRevocations(p)
	cfg := e.cfg.Copy()
	cfg.BaseEndpoint, cfg.ConfigSources = aws.String(p.URL), nil
	e.acm = acm.NewFromConfig(cfg)

	public, private := e.exportables(t)
	notExportable, err := localenv.RequestNotExportable(e.ctx, e.cfg, "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(arn string, reason acmtypes.RevocationReason) error {
		_, err := e.acm.RevokeCertificate(e.ctx, &acm.RevokeCertificateInput{CertificateArn: aws.String(arn), RevocationReason: reason})
		return err
	}
	if err := revoke(public, acmtypes.RevocationReasonSuperseded); errCode(err) != "ValidationException" {
		t.Fatalf("never exported: %v, want ValidationException", err)
	}
	if err := revoke(notExportable, acmtypes.RevocationReasonSuperseded); errCode(err) != "ValidationException" {
		t.Fatalf("not exportable: %v, want ValidationException", err)
	}
	if err := revoke("arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000", acmtypes.RevocationReasonSuperseded); errCode(err) != "ResourceNotFoundException" {
		t.Fatalf("unknown: %v", err)
	}
	e.export(t, public)
	e.export(t, private)
	for _, reason := range []acmtypes.RevocationReason{acmtypes.RevocationReasonKeyCompromise, acmtypes.RevocationReasonCertificateHold, acmtypes.RevocationReasonSuperceded} {
		if err := revoke(public, reason); errCode(err) != "ValidationException" {
			t.Fatalf("public with %s: %v, want ValidationException", reason, err)
		}
	}
	if err := revoke(private, acmtypes.RevocationReasonRemoveFromCrl); errCode(err) != "ValidationException" {
		t.Fatalf("private with REMOVE_FROM_CRL: %v", err)
	}
	if d := e.describe(t, public); d.Status != acmtypes.CertificateStatusIssued || d.RevokedAt != nil || len(acmstandin.Drain(revs.Events())) != 0 {
		t.Fatalf("a refused revocation changed the certificate: %s", d.Status)
	}

	for _, tc := range []struct {
		name, arn string
		reason    acmtypes.RevocationReason
		typ       string
	}{
		{"exportable public", public, acmtypes.RevocationReasonSuperseded, "AMAZON_ISSUED"},
		{"private", private, acmtypes.RevocationReasonKeyCompromise, "PRIVATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := revoke(tc.arn, tc.reason); err != nil {
				t.Fatal(err)
			}
			d := e.describe(t, tc.arn)
			if d.Status != acmtypes.CertificateStatusRevoked || d.RevokedAt == nil || d.RevocationReason != tc.reason {
				t.Fatalf("after revocation: %s %v %s", d.Status, d.RevokedAt, d.RevocationReason)
			}
			if _, err := e.acm.ExportCertificate(e.ctx, &acm.ExportCertificateInput{CertificateArn: aws.String(tc.arn), Passphrase: []byte(pass)}); errCode(err) != "ValidationException" {
				t.Errorf("export of a revoked certificate: %v", err)
			}
			if _, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(tc.arn)}); errCode(err) != "ValidationException" {
				t.Errorf("renewal of a revoked certificate: %v", err)
			}
			if err := revoke(tc.arn, tc.reason); errCode(err) != "ValidationException" {
				t.Errorf("second revocation: %v", err)
			}
			evs := acmstandin.Drain(revs.Events())
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			ev, err := events.Parse(evs[0])
			if err != nil {
				t.Fatalf("event: %v\n%s", err, evs[0])
			}
			if ev.Kind != events.KindRevoked || len(ev.CertificateARNs) != 1 || ev.CertificateARNs[0] != tc.arn || ev.CertificateType != tc.typ || ev.ExpiresAt.IsZero() {
				t.Fatalf("event %+v", ev)
			}
		})
	}
}
