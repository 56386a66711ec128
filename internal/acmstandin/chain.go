package acmstandin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// Chain makes ACM's GetCertificate and ExportCertificate answer with a
// certificate chain that issues the certificate, as AWS does
// ("ExportCertificate", AWS Certificate Manager API Reference:
// CertificateChain is the chain of the exported certificate, which it does
// not include; "GetCertificate": the chain leads from the certificate to the
// root CA). moto signs every certificate with the certificate's own key and
// returns Amazon's real root as its chain, which certferry-node (rightly)
// refuses. Chain re-issues the answered certificate (same subject, names,
// serial, validity and public key) from one local CA with deterministic
// RSA PKCS#1 v1.5 signatures, so every answer for one certificate carries
// the same bytes and fingerprint; the private key is untouched.
type Chain struct {
	once   sync.Once
	err    error
	caKey  *rsa.PrivateKey
	caCert *x509.Certificate
	caPEM  string
}

// NewChain returns the stand-in with a CA made on first use.
func NewChain() *Chain { return &Chain{} }

// CA is the local CA's certificate (nil before first use).
func (s *Chain) CA() *x509.Certificate { return s.caCert }

// Layer is the stand-in as a proxy layer.
func (s *Chain) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		target := req.Header.Get("X-Amz-Target")
		if target != Target("GetCertificate") && target != Target("ExportCertificate") {
			next.ServeHTTP(w, req)
			return
		}
		rec, body, ok := callJSON(next, w, req, "chain", target)
		if !ok {
			return
		}
		if leaf, ok := body["Certificate"].(string); ok {
			reissued, chain, err := s.reissue(leaf)
			if err != nil {
				http.Error(w, "ACM chain stand-in: "+err.Error(), http.StatusBadGateway)
				return
			}
			body["Certificate"], body["CertificateChain"] = reissued, chain
		}
		out, _ := json.Marshal(body)
		writeJSON(w, http.StatusOK, rec.Header(), out)
	})
}

func (s *Chain) reissue(leafPEM string) (string, string, error) {
	s.once.Do(func() {
		s.caKey, s.err = rsa.GenerateKey(rand.Reader, 2048)
		if s.err != nil {
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"certferry local"}, CommonName: "certferry local ACM stand-in CA"},
			NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(20 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		var der []byte
		if der, s.err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &s.caKey.PublicKey, s.caKey); s.err != nil {
			return
		}
		s.caCert, s.err = x509.ParseCertificate(der)
		s.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	})
	if s.err != nil {
		return "", "", s.err
	}
	blk, _ := pem.Decode([]byte(leafPEM))
	if blk == nil {
		return "", "", fmt.Errorf("certificate is not PEM")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", "", fmt.Errorf("parse certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: leaf.SerialNumber, Subject: leaf.Subject, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
		DNSNames: leaf.DNSNames, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, leaf.PublicKey, s.caKey)
	if err != nil {
		return "", "", fmt.Errorf("re-issue certificate: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), s.caPEM, nil
}
