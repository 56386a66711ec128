//go:build integration

package acmstandin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/acmstandin"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

var rig *testkit.Rig

func TestMain(m *testing.M) {
	var err error
	if rig, err = testkit.StartRig(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need moto_server and botocore:", err)
		os.Exit(1)
	}
	os.Exit(rig.Finish(m.Run()))
}

type env struct {
	ctx      context.Context
	cfg      aws.Config
	acm      *acm.Client
	renewals *acmstandin.Renewals
	chain    *acmstandin.Chain
}

// newEnv resets moto and puts the stand-ins in front of it, behind the
// AWS model check.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	if err := rig.Moto.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := rig.NewFaultProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	renewals, chain := testkit.UseACMStandIns(p)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithBaseEndpoint(p.URL), awsconfig.WithRetryMaxAttempts(1),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, cfg: cfg, acm: acm.NewFromConfig(cfg), renewals: renewals, chain: chain}
}

const pass = "correct horse battery staple"

// export exports arn and checks what ACM's ExportCertificate promises:
// the key matches the leaf and the chain issues it.
func (e *env) export(t *testing.T, arn string) *certs.Material {
	t.Helper()
	out, err := e.acm.ExportCertificate(e.ctx, &acm.ExportCertificateInput{CertificateArn: aws.String(arn), Passphrase: []byte(pass)})
	if err != nil {
		t.Fatalf("export %s: %v", arn, err)
	}
	m, err := certs.Verify(aws.ToString(out.Certificate), aws.ToString(out.CertificateChain), aws.ToString(out.PrivateKey), []byte(pass))
	if err != nil {
		t.Fatalf("exported bundle of %s does not check out: %v", arn, err)
	}
	return m
}

// exportables requests an exportable public certificate
// (shop.example.com) and a private one (api.internal.example, from a new
// private CA), the two kinds ACM renews and revokes.
func (e *env) exportables(t *testing.T) (public, private string) {
	t.Helper()
	public, err := localenv.RequestExportable(e.ctx, e.cfg, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := localenv.CreatePrivateCA(e.ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	private, err = localenv.RequestPrivate(e.ctx, e.cfg, ca, "api.internal.example")
	if err != nil {
		t.Fatal(err)
	}
	return public, private
}

func (e *env) describe(t *testing.T, arn string) *acmtypes.CertificateDetail {
	t.Helper()
	out, err := e.acm.DescribeCertificate(e.ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Certificate
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestRenewCertificate(t *testing.T) {
	e := newEnv(t)
	public, private := e.exportables(t)
	for _, tc := range []struct {
		name, arn string
		summary   bool // RenewalSummary exists only for AMAZON_ISSUED
	}{
		{"exportable public", public, true},
		{"private CA", private, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(tc.arn)})
			if errCode(err) != "ValidationException" {
				t.Fatalf("renewal before any export: %v, want ValidationException (only exported certificates renew)", err)
			}
			if got := e.describe(t, tc.arn).RenewalEligibility; got != acmtypes.RenewalEligibilityIneligible {
				t.Errorf("never exported: RenewalEligibility %s, want INELIGIBLE", got)
			}
			old := e.export(t, tc.arn)
			if got := e.describe(t, tc.arn).RenewalEligibility; got != acmtypes.RenewalEligibilityEligible {
				t.Errorf("exported: RenewalEligibility %s, want ELIGIBLE", got)
			}
			if _, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(tc.arn)}); err != nil {
				t.Fatalf("renew: %v", err)
			}
			d := e.describe(t, tc.arn)
			if aws.ToString(d.CertificateArn) != tc.arn || d.Status != acmtypes.CertificateStatusIssued {
				t.Fatalf("after renewal: %s %s, want the same ARN, ISSUED", aws.ToString(d.CertificateArn), d.Status)
			}
			serial, _ := certs.NormalizeSerial(aws.ToString(d.Serial))
			if serial == old.Serial {
				t.Errorf("DescribeCertificate still shows serial %s", serial)
			}
			if d.NotBefore.Before(old.Leaf.NotBefore) || d.NotAfter.Sub(*d.NotBefore) != old.Leaf.NotAfter.Sub(old.Leaf.NotBefore) {
				t.Errorf("validity %s..%s, want a new one of the same length from the renewal (was %s..%s)", d.NotBefore, d.NotAfter, old.Leaf.NotBefore, old.Leaf.NotAfter)
			}
			if tc.summary != (d.RenewalSummary != nil) {
				t.Errorf("RenewalSummary %+v, want present=%v", d.RenewalSummary, tc.summary)
			} else if d.RenewalSummary != nil && d.RenewalSummary.RenewalStatus != acmtypes.RenewalStatusSuccess {
				t.Errorf("RenewalStatus %s, want SUCCESS", d.RenewalSummary.RenewalStatus)
			}
			if d.RenewalEligibility != acmtypes.RenewalEligibilityIneligible {
				t.Errorf("renewed, not yet exported: RenewalEligibility %s, want INELIGIBLE", d.RenewalEligibility)
			}
			got, err := e.acm.GetCertificate(e.ctx, &acm.GetCertificateInput{CertificateArn: aws.String(tc.arn)})
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := certs.ParsePEMCertificates(aws.ToString(got.Certificate))
			if certs.SerialHex(leaf[0].SerialNumber) != serial {
				t.Errorf("GetCertificate serial %s, DescribeCertificate %s", certs.SerialHex(leaf[0].SerialNumber), serial)
			}
			renewed := e.export(t, tc.arn) // still exportable; the chain issues it; the key matches
			if !renewed.Leaf.NotBefore.Equal(*d.NotBefore) || !renewed.Leaf.NotAfter.Equal(*d.NotAfter) {
				t.Errorf("exported validity %s..%s, DescribeCertificate %s..%s", renewed.Leaf.NotBefore, renewed.Leaf.NotAfter, d.NotBefore, d.NotAfter)
			}
			if renewed.Serial != serial || renewed.Fingerprint != certs.Fingerprint(leaf[0].Raw) {
				t.Errorf("export: serial %s fingerprint %s, want %s %s", renewed.Serial, renewed.Fingerprint, serial, certs.Fingerprint(leaf[0].Raw))
			}
			oldPub, _ := x509.MarshalPKIXPublicKey(old.Leaf.PublicKey)
			newPub, _ := x509.MarshalPKIXPublicKey(renewed.Leaf.PublicKey)
			if string(oldPub) == string(newPub) {
				t.Error("the renewed certificate has the old key pair")
			}
			if err := renewed.Leaf.CheckSignatureFrom(e.chain.CA()); err != nil {
				t.Errorf("the local CA does not issue the renewed certificate: %v", err)
			}
			select {
			case raw := <-e.renewals.Events():
				ev, err := events.Parse(raw)
				if err != nil {
					t.Fatalf("event: %v\n%s", err, raw)
				}
				if ev.Kind != events.KindAvailable || ev.Action != "RENEWAL" || len(ev.CertificateARNs) != 1 || ev.CertificateARNs[0] != tc.arn || !ev.Deploys() {
					t.Errorf("event %+v, want ACM Certificate Available, RENEWAL, for %s", ev, tc.arn)
				}
			default:
				t.Fatal("no ACM Certificate Available event")
			}
			// Exported since the renewal: eligible again, and a second
			// renewal gives yet another serial.
			if _, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(tc.arn)}); err != nil {
				t.Fatalf("second renewal: %v", err)
			}
			<-e.renewals.Events()
			if again := e.export(t, tc.arn); again.Serial == renewed.Serial || again.Serial == old.Serial {
				t.Errorf("second renewal kept serial %s", again.Serial)
			}
		})
	}
}

func TestRenewCertificateRefused(t *testing.T) {
	e := newEnv(t)
	plain, err := localenv.RequestNotExportable(e.ctx, e.cfg, "plain.example.com")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t, "imported.example.com")
	imp, err := e.acm.ImportCertificate(e.ctx, &acm.ImportCertificateInput{Certificate: certPEM, PrivateKey: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, arn, code string }{
		{"public without export", plain, "ValidationException"},
		{"imported", aws.ToString(imp.CertificateArn), "ValidationException"},
		{"unknown", "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000", "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(tc.arn)})
			if errCode(err) != tc.code {
				t.Fatalf("renew: %v, want %s", err, tc.code)
			}
		})
	}
	select {
	case raw := <-e.renewals.Events():
		t.Errorf("a refused renewal emitted %s", raw)
	default:
	}
}

// TestRenewalReachesHandler: the renewal's event, delivered to certferry's
// renewal handler, deploys the renewed certificate under the same name.
func TestRenewalReachesHandler(t *testing.T) {
	e := newEnv(t)
	stack, err := localenv.Up(e.ctx, e.cfg, filepath.Join("..", "..", localenv.DocumentFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localenv.LaunchInstances(e.ctx, e.cfg, 1, map[string]string{"env": "prod"}); err != nil {
		t.Fatal(err)
	}
	arn, err := localenv.RequestExportable(e.ctx, e.cfg, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := app.Onboard(e.cfg, stack.Config, app.Options{}).Handle(e.ctx, lambdaevents.APIGatewayProxyRequest{
		HTTPMethod: "POST", Resource: "/certificates", Path: "/certificates",
		Body: fmt.Sprintf(`{"certificateArn": %q, "name": "shop-web", "targets": [{"key": "tag:env", "values": ["prod"]}]}`, arn),
	})
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("onboard: %v %d %s", err, resp.StatusCode, resp.Body)
	}
	var onboarded struct{ Serial, CommandID string }
	_ = json.Unmarshal([]byte(resp.Body), &onboarded)
	if _, err := e.acm.RenewCertificate(e.ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(arn)}); err != nil {
		t.Fatalf("renew: %v", err)
	}
	d := e.describe(t, arn)
	serial, _ := certs.NormalizeSerial(aws.ToString(d.Serial))
	out, err := app.Renewal(e.cfg, stack.Config, app.Options{}).Handle(e.ctx, <-e.renewals.Events())
	if err != nil {
		t.Fatalf("renewal handler: %v", err)
	}
	if len(out.Deployed) != 1 || out.Deployed[0].Name != "shop-web" || out.Deployed[0].Serial != serial || out.Deployed[0].CommandID == onboarded.CommandID {
		t.Fatalf("renewal handler: %+v, want shop-web deployed with serial %s in a new command (onboarded %s)", out, serial, onboarded.Serial)
	}
	// Exported by certferry's pipeline: eligible for the next renewal.
	if got := e.describe(t, arn).RenewalEligibility; got != acmtypes.RenewalEligibilityEligible {
		t.Errorf("after certferry exported the renewal: RenewalEligibility %s, want ELIGIBLE", got)
	}
}

func selfSigned(t *testing.T, name string) ([]byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
