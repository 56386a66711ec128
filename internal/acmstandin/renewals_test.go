package acmstandin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
)

// fakeACM answers the few ACM operations the stand-ins call, for one
// certificate, the way the emulator does (self-signed leaf, no renewal).
type fakeACM struct {
	arn, typ, status, export string
	leaf                     []byte
	key                      *ecdsa.PrivateKey
}

func newFakeACM(t *testing.T, typ, status, export string) *fakeACM {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "shop.example.com"}, DNSNames: []string{"shop.example.com"},
		NotBefore: time.Now().Add(-time.Hour).Truncate(time.Second), NotAfter: time.Now().Add(198 * 24 * time.Hour).Truncate(time.Second)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeACM{arn: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555", typ: typ, status: status, export: export, leaf: der, key: key}
}

func (f *fakeACM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var in struct{ CertificateArn, Passphrase string }
	_ = json.Unmarshal(raw, &in)
	if in.CertificateArn != f.arn {
		writeError(w, "ResourceNotFoundException", "Certificate with arn "+in.CertificateArn+" not found")
		return
	}
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.leaf}))
	var out any
	switch r.Header.Get("X-Amz-Target") {
	case Target("DescribeCertificate"):
		out = map[string]any{"Certificate": map[string]any{
			"CertificateArn": f.arn, "DomainName": "shop.example.com", "Status": f.status, "Type": f.typ, "Serial": "4242",
			"RenewalEligibility": "INELIGIBLE", "Options": map[string]any{"Export": f.export}, "CreatedAt": float64(time.Now().Unix()),
			"DomainValidationOptions": []any{map[string]any{"DomainName": "shop.example.com", "ValidationMethod": "DNS"}},
		}}
	case Target("GetCertificate"):
		out = map[string]any{"Certificate": leafPEM, "CertificateChain": leafPEM}
	case Target("ExportCertificate"):
		pass, _ := base64.StdEncoding.DecodeString(in.Passphrase)
		key, err := encryptKey(f.key, pass)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out = map[string]any{"Certificate": leafPEM, "CertificateChain": leafPEM, "PrivateKey": key}
	default:
		writeError(w, "UnknownOperationException", r.Header.Get("X-Amz-Target"))
		return
	}
	b, _ := json.Marshal(out)
	writeJSON(w, http.StatusOK, nil, b)
}

// client is an SDK client whose transport runs Chain(Renewals(fake)).
func client(fake http.Handler) (*acm.Client, *Renewals, *Chain) {
	r, c := NewRenewals(), NewChain()
	backend := roundTripper{fake}
	api := acm.New(acm.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://acm.test"), RetryMaxAttempts: 1,
		Credentials: aws.AnonymousCredentials{},
		HTTPClient:  &http.Client{Transport: Transport(backend, c.Layer, r.Layer)},
	})
	return api, r, c
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestRenewalsLayer(t *testing.T) {
	ctx := context.Background()
	pass := []byte("a passphrase")
	f := newFakeACM(t, "AMAZON_ISSUED", "ISSUED", "ENABLED")
	api, renewals, chain := client(f)
	arn := aws.String(f.arn)
	if _, err := api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: arn}); code(err) != "ValidationException" {
		t.Fatalf("never exported: %v, want ValidationException", err)
	}
	exp, err := api.ExportCertificate(ctx, &acm.ExportCertificateInput{CertificateArn: arn, Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	old, err := certs.Verify(aws.ToString(exp.Certificate), aws.ToString(exp.CertificateChain), aws.ToString(exp.PrivateKey), pass)
	if err != nil {
		t.Fatalf("the chain stand-in's export does not verify: %v", err)
	}
	if _, err := api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: arn}); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if _, err := api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: arn}); code(err) != "ValidationException" {
		t.Fatalf("renewed, not exported since: %v, want ValidationException", err)
	}
	d, err := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Certificate
	serial, _ := certs.NormalizeSerial(aws.ToString(c.Serial))
	if serial == old.Serial || c.RenewalSummary == nil || c.RenewalSummary.RenewalStatus != acmtypes.RenewalStatusSuccess || c.RenewalEligibility != acmtypes.RenewalEligibilityIneligible {
		t.Errorf("after renewal: serial %s (old %s), summary %+v, eligibility %s", serial, old.Serial, c.RenewalSummary, c.RenewalEligibility)
	}
	exp, err = api.ExportCertificate(ctx, &acm.ExportCertificateInput{CertificateArn: arn, Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := certs.Verify(aws.ToString(exp.Certificate), aws.ToString(exp.CertificateChain), aws.ToString(exp.PrivateKey), pass)
	if err != nil {
		t.Fatalf("renewed export does not verify: %v", err)
	}
	if renewed.Serial != serial || renewed.Leaf.CheckSignatureFrom(chain.CA()) != nil {
		t.Errorf("renewed export: serial %s, want %s, issued by the local CA", renewed.Serial, serial)
	}
	if renewed.Key.Public().(*ecdsa.PublicKey).Equal(old.Key.Public()) {
		t.Error("the renewal kept the key pair")
	}
	if _, ok := renewed.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("key algorithm changed: %T", renewed.Key)
	}
	d, _ = api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: arn})
	if d.Certificate.RenewalEligibility != acmtypes.RenewalEligibilityEligible {
		t.Errorf("exported after renewal: %s, want ELIGIBLE", d.Certificate.RenewalEligibility)
	}
	ev, err := events.Parse(<-renewals.Events())
	if err != nil || ev.Action != "RENEWAL" || ev.Kind != events.KindAvailable || ev.CertificateARNs[0] != f.arn || ev.ExpiresAt.IsZero() {
		t.Errorf("event: %+v %v", ev, err)
	}
}

func TestRenewalsRefusals(t *testing.T) {
	for _, tc := range []struct{ name, typ, status, export, arn, want string }{
		{"pending validation", "AMAZON_ISSUED", "PENDING_VALIDATION", "ENABLED", "", "RequestInProgressException"},
		{"expired", "PRIVATE", "EXPIRED", "", "", "ValidationException"},
		{"imported", "IMPORTED", "ISSUED", "", "", "ValidationException"},
		{"public without export", "AMAZON_ISSUED", "ISSUED", "DISABLED", "", "ValidationException"},
		{"unknown", "PRIVATE", "ISSUED", "", "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000", "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeACM(t, tc.typ, tc.status, tc.export)
			api, renewals, _ := client(f)
			arn := f.arn
			if tc.arn != "" {
				arn = tc.arn
			}
			_, err := api.RenewCertificate(context.Background(), &acm.RenewCertificateInput{CertificateArn: aws.String(arn)})
			if code(err) != tc.want {
				t.Fatalf("renew: %v, want %s", err, tc.want)
			}
			select {
			case ev := <-renewals.Events():
				t.Errorf("a refused renewal emitted %s", ev)
			default:
			}
		})
	}
}

func TestExportsInProgressAfterRenewal(t *testing.T) {
	ctx := context.Background()
	f := newFakeACM(t, "PRIVATE", "ISSUED", "")
	api, renewals, _ := client(f)
	renewals.ExportsInProgress = 2
	in := &acm.ExportCertificateInput{CertificateArn: aws.String(f.arn), Passphrase: []byte("a passphrase")}
	if _, err := api.ExportCertificate(ctx, in); err != nil {
		t.Fatalf("before any renewal: %v", err)
	}
	if _, err := api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: in.CertificateArn}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, err := api.ExportCertificate(ctx, in); code(err) != "RequestInProgressException" {
			t.Fatalf("export %d after the renewal: %v, want RequestInProgressException", i, err)
		}
	}
	d, _ := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: in.CertificateArn})
	if d.Certificate.RenewalEligibility != acmtypes.RenewalEligibilityIneligible {
		t.Errorf("failed exports counted as exports: %s", d.Certificate.RenewalEligibility)
	}
	if _, err := api.ExportCertificate(ctx, in); err != nil {
		t.Fatalf("third export: %v", err)
	}
}

func TestColonHex(t *testing.T) {
	n, _ := new(big.Int).SetString("0a1b2c", 16)
	if got := colonHex(n); got != "0a:1b:2c" {
		t.Errorf("colonHex = %s", got)
	}
	if s, _ := certs.NormalizeSerial(colonHex(n)); s != "a1b2c" {
		t.Errorf("certferry reads %s", s)
	}
}
