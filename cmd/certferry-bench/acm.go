package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

// acmDescriptions answers DescribeCertificate for the sweeper bench's
// 10 000 certificates. Requesting them from moto takes 20+ minutes (a new
// RSA key and certificate each, in one Python process), so the bench
// requests one real certificate on moto, exports it through the ACM
// stand-ins (acmstandin.Renewals: an exportable certificate exported since
// it was issued is ELIGIBLE for renewal, as the ACM User Guide's "Managed
// certificate renewal" says, where moto says INELIGIBLE always), and takes
// moto's DescribeCertificate answer for it as the shape of every answer:
// each certificate's answer is that one with its own ARN, domain and
// serial. Certificates it does not know go on to moto.
type acmDescriptions struct {
	mu       sync.Mutex
	template map[string]any // the "Certificate" member of a real answer
	certs    map[string]benchCert
}

type benchCert struct{ domain, serial string }

// newACMDescriptions requests, exports and describes one certificate on
// moto (through its own proxy with the ACM stand-ins), as the template.
func newACMDescriptions(ctx context.Context, setup aws.Config) (*acmDescriptions, error) {
	arn, err := localenv.RequestExportable(ctx, setup, "template.example.com")
	if err != nil {
		return nil, err
	}
	p, err := modelRig.NewFaultProxy()
	if err != nil {
		return nil, err
	}
	defer p.Close()
	testkit.UseACMStandIns(p)
	cfg := setup.Copy()
	cfg.BaseEndpoint = aws.String(p.URL)
	rec := &recordingClient{next: http.DefaultClient}
	cfg.HTTPClient = rec
	api := acm.NewFromConfig(cfg)
	if _, err := api.ExportCertificate(ctx, &acm.ExportCertificateInput{CertificateArn: aws.String(arn), Passphrase: []byte("bench-seed-passphrase")}); err != nil {
		return nil, fmt.Errorf("export %s: %w", arn, err)
	}
	if _, err := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)}); err != nil {
		return nil, fmt.Errorf("describe %s: %w", arn, err)
	}
	var out struct{ Certificate map[string]any }
	if err := json.Unmarshal(rec.last, &out); err != nil || out.Certificate == nil {
		return nil, fmt.Errorf("describe %s: answer %q: %v", arn, rec.last, err)
	}
	if out.Certificate["RenewalEligibility"] != "ELIGIBLE" || out.Certificate["Status"] != "ISSUED" {
		return nil, fmt.Errorf("describe %s: the template is %v / %v, want ISSUED and ELIGIBLE", arn, out.Certificate["Status"], out.Certificate["RenewalEligibility"])
	}
	return &acmDescriptions{template: out.Certificate, certs: map[string]benchCert{}}, nil
}

// add makes arn answered as a certificate of domain with serial.
func (a *acmDescriptions) add(arn, domain, serial string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.certs[arn] = benchCert{domain: domain, serial: serial}
}

// describe answers one DescribeCertificate; ok is false for an ARN it does
// not know (moto answers).
func (a *acmDescriptions) describe(body []byte) (int, []byte, bool) {
	var in struct{ CertificateArn string }
	if json.Unmarshal(body, &in) != nil {
		return 0, nil, false
	}
	a.mu.Lock()
	c, ok := a.certs[in.CertificateArn]
	a.mu.Unlock()
	if !ok {
		return 0, nil, false
	}
	// A copy through JSON: the template is never changed.
	raw, _ := json.Marshal(a.template)
	old := a.template["DomainName"].(string)
	raw = bytes.ReplaceAll(raw, []byte(old), []byte(c.domain))
	var d map[string]any
	_ = json.Unmarshal(raw, &d)
	d["CertificateArn"], d["Serial"] = in.CertificateArn, c.serial
	out, _ := json.Marshal(map[string]any{"Certificate": d})
	return http.StatusOK, out, true
}

// notAfter is the template's (every bench certificate's) NotAfter.
func (a *acmDescriptions) notAfter() time.Time {
	f, _ := a.template["NotAfter"].(float64)
	return time.Unix(int64(f), 0).UTC()
}

// layer answers the certificates it knows and sends every other request on.
func (a *acmDescriptions) layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "CertificateManager.DescribeCertificate" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if status, out, ok := a.describe(body); ok {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(status)
			_, _ = w.Write(out)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// recordingClient keeps the last response body it passed on.
type recordingClient struct {
	next *http.Client
	last []byte
}

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.last = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// colonSerial is a serial as ACM writes it: lowercase hex bytes joined by
// colons.
func colonSerial(n int) string {
	h := fmt.Sprintf("%032x", n+1)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
