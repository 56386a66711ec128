package acmstandin

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/youmark/pkcs8"
)

// Renewals is ACM's RenewCertificate, which the emulator lacks, done as
// AWS documents it:
//
//   - "RenewCertificate", AWS Certificate Manager API Reference: renews an
//     eligible certificate under the same ARN; errors InvalidArnException,
//     RequestInProgressException, ResourceNotFoundException (botocore's
//     acm service-2.json), plus the common ValidationException.
//   - "Force certificate renewal", ACM User Guide: public and private
//     certificates can be renewed, but "you can only renew certificates
//     that have been previously exported"; an imported certificate, a
//     public one requested without Options.Export ENABLED, and one not
//     exported since it was issued or last renewed are refused
//     (ValidationException), one not yet issued answers
//     RequestInProgressException, an unknown ARN ResourceNotFoundException
//     (the emulator's own answer to the DescribeCertificate made first).
//   - "Managed certificate renewal", ACM User Guide: an exportable
//     certificate is ELIGIBLE for renewal only if it was exported since it
//     was issued or last renewed; DescribeCertificate's RenewalEligibility
//     says so for every exportable certificate (moto says INELIGIBLE always).
//   - A renewed certificate has a new key pair, a new serial and a new
//     validity of the same length; DescribeCertificate then shows them
//     (Serial, NotBefore, NotAfter, IssuedAt) and, for AMAZON_ISSUED ones, a
//     RenewalSummary with RenewalStatus SUCCESS ("RenewalSummary", API
//     Reference: present only for AMAZON_ISSUED); GetCertificate and
//     ExportCertificate answer the new certificate and, for Export, the new
//     key encrypted with the request's passphrase (PKCS#8, AES-256-CBC); the
//     certificate stays exportable.
//   - "Amazon EventBridge support for ACM", ACM User Guide: a renewal emits
//     "ACM Certificate Available" with detail Action RENEWAL; Events
//     delivers it to whoever plays EventBridge (the rig hands it to the
//     renewal handler).
//
// State (exports seen, renewed certificates) lives in this value: exports
// are counted only when they pass through the layer, so mount it before the
// first export. Renewed certificates are signed by their own key, like
// moto's; Chain, outside this layer, re-issues them from its CA.
type Renewals struct {
	// ExportsInProgress is how many ExportCertificate calls just after a
	// renewal answer RequestInProgressException before the renewed
	// certificate exports, as ACM's export can fail transiently just after
	// a renewal (certferry retries with backoff). Zero: none.
	ExportsInProgress int

	now      func() time.Time
	pending  map[string]int // in-progress answers left, by ARN
	renewMu  sync.Mutex
	mu       sync.Mutex
	exported map[string]bool // exported since issued or last renewed
	renewed  map[string]*renewedCert
	events   chan []byte
}

type renewedCert struct {
	leaf *x509.Certificate
	pem  string
	key  crypto.Signer
	at   time.Time
}

// NewRenewals returns the stand-in with no renewals and an event buffer of
// 256 events (EventBridge is best effort too: a full buffer drops).
func NewRenewals() *Renewals {
	return &Renewals{now: time.Now, exported: map[string]bool{}, renewed: map[string]*renewedCert{}, pending: map[string]int{}, events: make(chan []byte, 256)}
}

// Events are the "ACM Certificate Available" (RENEWAL) events renewals
// emitted, as EventBridge would deliver them.
func (r *Renewals) Events() <-chan []byte { return r.events }

// Layer is the stand-in as a proxy layer.
func (r *Renewals) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			CertificateArn string
			Passphrase     string
		}
		op, ok := intercept(w, req, next, &in, "RenewCertificate", "DescribeCertificate", "GetCertificate", "ExportCertificate", "DeleteCertificate")
		if !ok {
			return
		}
		if op == "RenewCertificate" {
			r.renew(w, req, next, in.CertificateArn)
			return
		}
		if op == "ExportCertificate" {
			r.mu.Lock()
			left := r.pending[in.CertificateArn]
			if left > 0 {
				r.pending[in.CertificateArn] = left - 1
			}
			r.mu.Unlock()
			if left > 0 {
				writeError(w, "RequestInProgressException", fmt.Sprintf("Certificate %s renewal is in progress; retry the export shortly.", in.CertificateArn))
				return
			}
		}
		rec, body, ok := callJSON(next, w, req, "renewal", op)
		if !ok {
			return
		}
		r.mu.Lock()
		rc := r.renewed[in.CertificateArn]
		switch op {
		case "DeleteCertificate":
			delete(r.renewed, in.CertificateArn)
			delete(r.exported, in.CertificateArn)
			delete(r.pending, in.CertificateArn)
		case "ExportCertificate":
			r.exported[in.CertificateArn] = true
		case "DescribeCertificate":
			if d, ok := body["Certificate"].(map[string]any); ok {
				r.describe(d, in.CertificateArn, rc)
			}
		}
		r.mu.Unlock()
		if rc != nil && (op == "GetCertificate" || op == "ExportCertificate") {
			body["Certificate"] = rc.pem
			if op == "ExportCertificate" {
				pass, err := base64.StdEncoding.DecodeString(in.Passphrase)
				if err != nil {
					writeError(w, "ValidationException", "Passphrase is not base64")
					return
				}
				key, err := encryptKey(rc.key, pass)
				if err != nil {
					http.Error(w, "ACM renewal stand-in: "+err.Error(), http.StatusInternalServerError)
					return
				}
				body["PrivateKey"] = key
			}
		}
		out, _ := json.Marshal(body)
		writeJSON(w, http.StatusOK, rec.Header(), out)
	})
}

// describe patches one DescribeCertificate answer (r.mu held).
func (r *Renewals) describe(d map[string]any, arn string, rc *renewedCert) {
	if exportable(d) && d["Status"] == "ISSUED" {
		d["RenewalEligibility"] = "INELIGIBLE"
		if r.exported[arn] {
			d["RenewalEligibility"] = "ELIGIBLE"
		}
	}
	if rc == nil {
		return
	}
	d["Serial"] = colonHex(rc.leaf.SerialNumber)
	d["NotBefore"] = epoch(rc.leaf.NotBefore)
	d["NotAfter"] = epoch(rc.leaf.NotAfter)
	d["IssuedAt"] = epoch(rc.at)
	if d["Type"] == "AMAZON_ISSUED" {
		d["RenewalSummary"] = map[string]any{
			"RenewalStatus": "SUCCESS", "DomainValidationOptions": d["DomainValidationOptions"], "UpdatedAt": epoch(rc.at),
		}
	}
}

func exportable(d map[string]any) bool {
	if d["Type"] == "PRIVATE" {
		return true
	}
	opts, _ := d["Options"].(map[string]any)
	return d["Type"] == "AMAZON_ISSUED" && opts != nil && opts["Export"] == "ENABLED"
}

// renew answers RenewCertificate.
func (r *Renewals) renew(w http.ResponseWriter, req *http.Request, next http.Handler, arn string) {
	r.renewMu.Lock()
	defer r.renewMu.Unlock()
	d, ok := describeCert(w, req, next, arn, "renewal")
	if !ok {
		return
	}
	r.mu.Lock()
	exported := r.exported[arn]
	current := r.renewed[arn]
	r.mu.Unlock()
	switch {
	case d["Status"] == "PENDING_VALIDATION":
		writeError(w, "RequestInProgressException", fmt.Sprintf("Certificate %s is still pending validation; it cannot be renewed before it is issued.", arn))
		return
	case d["Status"] != "ISSUED":
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has status %v and is not eligible for renewal.", arn, d["Status"]))
		return
	case d["Type"] == "IMPORTED":
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s is imported; ACM does not renew imported certificates.", arn))
		return
	case !exportable(d):
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s is not exportable; only exported private certificates and exported public certificates requested with export enabled can be renewed with RenewCertificate.", arn))
		return
	case !exported:
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has not been exported since it was issued or last renewed and is not eligible for renewal.", arn))
		return
	}
	old := (*x509.Certificate)(nil)
	if current != nil {
		old = current.leaf
	} else {
		got := call(next, sub(req, "GetCertificate", map[string]string{"CertificateArn": arn}))
		var g struct{ Certificate string }
		if got.Code != http.StatusOK || json.Unmarshal(got.Body.Bytes(), &g) != nil {
			copyResponse(w, got)
			return
		}
		blk, _ := pem.Decode([]byte(g.Certificate))
		if blk == nil {
			http.Error(w, "ACM renewal stand-in: emulator's certificate is not PEM", http.StatusBadGateway)
			return
		}
		var err error
		if old, err = x509.ParseCertificate(blk.Bytes); err != nil {
			http.Error(w, "ACM renewal stand-in: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	rc, err := reissue(old, r.now())
	if err != nil {
		http.Error(w, "ACM renewal stand-in: "+err.Error(), http.StatusInternalServerError)
		return
	}
	r.mu.Lock()
	r.renewed[arn] = rc
	r.exported[arn] = false // a renewal must be exported before the next one
	r.pending[arn] = r.ExportsInProgress
	r.mu.Unlock()
	if ev, err := availableEvent(arn, d, rc); err == nil {
		offer(r.events, ev)
	}
	writeJSON(w, http.StatusOK, nil, []byte("{}"))
}

// reissue makes old's successor: same subject and names, a new key of the
// same algorithm, a new random serial, a validity of the same length
// starting now, self-signed like the emulator's.
func reissue(old *x509.Certificate, now time.Time) (*renewedCert, error) {
	var key crypto.Signer
	var err error
	switch pub := old.PublicKey.(type) {
	case *rsa.PublicKey:
		key, err = rsa.GenerateKey(rand.Reader, pub.N.BitLen())
	case *ecdsa.PublicKey:
		key, err = ecdsa.GenerateKey(pub.Curve, rand.Reader)
	default:
		return nil, fmt.Errorf("key type %T not supported", old.PublicKey)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	var serial *big.Int
	for serial == nil || serial.Sign() == 0 || serial.Cmp(old.SerialNumber) == 0 {
		if serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
			return nil, err
		}
	}
	start := now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: old.Subject, DNSNames: old.DNSNames,
		NotBefore: start, NotAfter: start.Add(old.NotAfter.Sub(old.NotBefore)),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &renewedCert{leaf: leaf, key: key, at: start, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}, nil
}

// encryptKey is the key as ExportCertificate returns it: PKCS#8 encrypted
// with the passphrase, AES-256-CBC.
func encryptKey(key crypto.Signer, pass []byte) (string, error) {
	der, err := pkcs8.MarshalPrivateKey(key, pass, &pkcs8.Opts{
		Cipher:  pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 2048, HMACHash: crypto.SHA256},
	})
	if err != nil {
		return "", fmt.Errorf("encrypt key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})), nil
}

// availableEvent is the EventBridge event ACM sends after a renewal
// ("Amazon EventBridge support for ACM", ACM User Guide: detail-type "ACM
// Certificate Available", source aws.acm, the certificate in resources).
func availableEvent(arn string, d map[string]any, rc *renewedCert) ([]byte, error) {
	detail := map[string]any{
		"Action":                    "RENEWAL",
		"CertificateType":           d["Type"],
		"CommonName":                d["DomainName"],
		"CertificateExpirationDate": rc.leaf.NotAfter.UTC().Format(time.RFC3339),
		"DaysToExpiry":              int(rc.leaf.NotAfter.Sub(rc.at).Hours() / 24),
		"InUse":                     len(asSlice(d["InUseBy"])) > 0,
		"Exported":                  true,
	}
	if c, ok := d["CreatedAt"].(float64); ok {
		detail["CertificateCreatedDate"] = time.Unix(int64(c), 0).UTC().Format(time.RFC3339)
	}
	if opts := asSlice(d["DomainValidationOptions"]); len(opts) > 0 {
		if o, ok := opts[0].(map[string]any); ok && o["ValidationMethod"] != nil {
			detail["DomainValidationMethod"] = o["ValidationMethod"]
		}
	}
	return acmEvent(arn, "ACM Certificate Available", rc.at, detail)
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func epoch(t time.Time) float64 { return float64(t.Unix()) }

// colonHex is a serial as ACM's DescribeCertificate spells it
// ("0a:1b:…").
func colonHex(n *big.Int) string {
	b := n.Bytes()
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, ":")
}
