package certs

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"
)

type fakeActions struct {
	renews, revokes []string
	err             error
}

func (f *fakeActions) RenewCertificate(_ context.Context, in *acm.RenewCertificateInput, _ ...func(*acm.Options)) (*acm.RenewCertificateOutput, error) {
	f.renews = append(f.renews, *in.CertificateArn)
	return &acm.RenewCertificateOutput{}, f.err
}

func (f *fakeActions) RevokeCertificate(_ context.Context, in *acm.RevokeCertificateInput, _ ...func(*acm.Options)) (*acm.RevokeCertificateOutput, error) {
	f.revokes = append(f.revokes, *in.CertificateArn+" "+string(in.RevocationReason))
	return &acm.RevokeCertificateOutput{CertificateArn: in.CertificateArn}, f.err
}

// Every reason certferry offers is a value of ACM's RevocationReason enum
// (the SDK's, generated from the same model the rig checks requests
// against).
func TestRevocationReasonsAreACMValues(t *testing.T) {
	values := acmtypes.RevocationReason("").Values()
	for _, i := range []Info{{Type: "PRIVATE"}, {Type: "AMAZON_ISSUED", ExportOption: "ENABLED"}} {
		rs := i.RevocationReasons()
		if len(rs) == 0 {
			t.Fatalf("%s: no reasons", i.Type)
		}
		for _, r := range rs {
			if !slices.Contains(values, acmtypes.RevocationReason(r)) {
				t.Errorf("%s: %s is not in ACM's enum", i.Type, r)
			}
		}
	}
	for _, i := range []Info{{Type: "IMPORTED"}, {Type: "AMAZON_ISSUED", ExportOption: "DISABLED"}, {Type: "AMAZON_ISSUED"}} {
		if rs := i.RevocationReasons(); rs != nil {
			t.Errorf("%s/%s: %v, want none", i.Type, i.ExportOption, rs)
		}
	}
}

// ACM's answers map to the domain errors; one call each, never retried
// here (RenewCertificate is not idempotent, RevokeCertificate permanent).
func TestActionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"accepted", nil, nil},
		{"unknown", &acmtypes.ResourceNotFoundException{Message: strPtr("no such certificate")}, ErrNotFound},
		{"not eligible", &smithy.GenericAPIError{Code: "ValidationException", Message: "not exported"}, nil},
		{"in progress", &acmtypes.RequestInProgressException{Message: strPtr("renewing")}, ErrACMBusy},
		{"conflict", &acmtypes.ConflictException{Message: strPtr("busy")}, ErrACMBusy},
		{"in use", &acmtypes.ResourceInUseException{Message: strPtr("ELB")}, ErrACMBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeActions{err: tc.err}
			a := NewActions(f)
			errRenew := a.Renew(context.Background(), testARN)
			errRevoke := a.Revoke(context.Background(), testARN, ReasonSuperseded)
			if len(f.renews) != 1 || len(f.revokes) != 1 || f.revokes[0] != testARN+" SUPERSEDED" {
				t.Fatalf("calls %v %v", f.renews, f.revokes)
			}
			wantRenew, wantRevoke := tc.want, tc.want
			if tc.name == "not eligible" {
				wantRenew, wantRevoke = ErrNotRenewable, ErrNotRevocable
			}
			if tc.err == nil && (errRenew != nil || errRevoke != nil) || tc.err != nil && (!errors.Is(errRenew, wantRenew) || !errors.Is(errRevoke, wantRevoke)) {
				t.Fatalf("renew %v revoke %v, want %v / %v", errRenew, errRevoke, wantRenew, wantRevoke)
			}
		})
	}
}

func strPtr(s string) *string { return &s }

func TestCheckRevocable(t *testing.T) {
	pub := Info{ARN: testARN, Type: "AMAZON_ISSUED", ExportOption: "ENABLED", Status: "ISSUED"}
	priv := Info{ARN: testARN, Type: "PRIVATE", Status: "ISSUED"}
	revoked := pub
	revoked.Status = "REVOKED"
	for _, tc := range []struct {
		name   string
		info   Info
		reason string
		want   error
	}{
		{"public superseded", pub, ReasonSuperseded, nil},
		{"public key compromise", pub, ReasonKeyCompromise, ErrBadReason},
		{"private key compromise", priv, ReasonKeyCompromise, nil},
		{"private hold", priv, "CERTIFICATE_HOLD", ErrBadReason},
		{"revoked", revoked, ReasonSuperseded, ErrAlreadyRevoked},
		{"imported", Info{Type: "IMPORTED", Status: "ISSUED"}, ReasonUnspecified, ErrNotRevocable},
		{"pending", Info{Type: "PRIVATE", Status: "PENDING_VALIDATION"}, ReasonUnspecified, ErrNotRevocable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.info.CheckRevocable(tc.reason); !errors.Is(err, tc.want) || tc.want == nil && err != nil {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}
