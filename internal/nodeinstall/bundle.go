package nodeinstall

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/bundle"
)

// SecretsAPI is the one Secrets Manager call the installer makes.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretsAPI = (*secretsmanager.Client)(nil)

// KeystoreSecretSuffix names the secret holding a name's keystore password:
// <SecretId>/keystore, SecretString {"password": "..."}.
const KeystoreSecretSuffix = "/keystore"

var serialPattern = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// material is a checked bundle: everything the formats need, decrypted. It
// holds the private key, so it never reaches a log or the output.
type material struct {
	leaf        *x509.Certificate
	chain       []*x509.Certificate
	key         crypto.Signer
	keyPKCS8    []byte // unencrypted PKCS#8 DER
	fingerprint string // AB:CD:... SHA-256 of the leaf
	thumbprint  string // upper-case hex SHA-1 of the leaf (Windows)
	serial      string
	pkcs12      []byte // the bundle's PFX (Windows)
	passphrase  string
}

// String keeps fmt from printing key material.
func (m *material) String() string { return "material{" + m.fingerprint + "}" }

// Fingerprint is the SHA-256 fingerprint of a certificate as certferry
// writes it: upper-case hex bytes separated by ':'.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// errSuperseded marks a command whose bundle has moved on.
var errSuperseded = errors.New("superseded")

// fetchBundle reads the bundle. Errors never echo the secret's value.
func fetchBundle(ctx context.Context, api SecretsAPI, secretID string) (*bundle.Bundle, error) {
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", secretID, err)
	}
	var b bundle.Bundle
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &b); err != nil {
		return nil, fmt.Errorf("read secret %s: value is not a certferry bundle", secretID)
	}
	return &b, nil
}

// checkBundle checks b before anything is written: the command is not
// superseded, the certificate fields hold only certificates, the key
// decrypts and matches the leaf, the chain verifies to the leaf, and the
// fingerprint is the bundle's.
func checkBundle(b *bundle.Bundle, expected string, now time.Time) (*material, error) {
	if b.Fingerprint != expected {
		return nil, fmt.Errorf("%w: the bundle holds %s but this command installs %s (a newer deployment supersedes it)",
			errSuperseded, sanitize(b.Fingerprint, 100), expected)
	}
	leafs, err := certificates(b.Certificate)
	if err != nil {
		return nil, fmt.Errorf("bundle certificate: %w", err)
	}
	if len(leafs) != 1 {
		return nil, fmt.Errorf("bundle certificate: holds %d certificates, want 1", len(leafs))
	}
	chain, err := certificates(b.CertificateChain)
	if err != nil {
		return nil, fmt.Errorf("bundle certificate chain: %w", err)
	}
	m := &material{leaf: leafs[0], chain: chain, passphrase: b.Passphrase}
	m.fingerprint = Fingerprint(m.leaf.Raw)
	sum := sha1.Sum(m.leaf.Raw)
	m.thumbprint = strings.ToUpper(hex.EncodeToString(sum[:]))
	if m.fingerprint != b.Fingerprint {
		return nil, fmt.Errorf("bundle certificate has fingerprint %s, the bundle says %s", m.fingerprint, sanitize(b.Fingerprint, 100))
	}
	if serialPattern.MatchString(b.Serial) {
		m.serial = b.Serial
	}
	if want := fmt.Sprintf("%x", m.leaf.SerialNumber); m.serial != "" && strings.TrimLeft(m.serial, "0") != strings.TrimLeft(want, "0") {
		return nil, fmt.Errorf("bundle serial %s is not the certificate's %s", m.serial, want)
	}
	if now.After(m.leaf.NotAfter) {
		return nil, fmt.Errorf("bundle certificate expired at %s", m.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := verifyChain(m.leaf, chain, now); err != nil {
		return nil, err
	}
	key, der, err := decryptKey(b.PrivateKey, b.Passphrase)
	if err != nil {
		return nil, err
	}
	type publicKeyEqual interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := key.Public().(publicKeyEqual); !ok || !pk.Equal(m.leaf.PublicKey) {
		return nil, errors.New("private key does not match the certificate")
	}
	m.key, m.keyPKCS8 = key, der
	if b.PKCS12 != "" {
		if m.pkcs12, err = base64.StdEncoding.DecodeString(b.PKCS12); err != nil {
			return nil, errors.New("bundle pkcs12 is not base64")
		}
	}
	return m, nil
}

// certificates decodes PEM text that must hold only CERTIFICATE blocks.
func certificates(text string) ([]*x509.Certificate, error) {
	rest := []byte(text)
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" || len(blk.Headers) > 0 {
			return nil, errors.New("holds a PEM block that is not a certificate; only CERTIFICATE blocks are allowed")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("holds text that is not a PEM certificate")
	}
	return out, nil
}

// verifyChain checks that leaf chains through chain to chain's last
// certificate, which is taken as the anchor (ACM private CA chains end in the
// private root; public chains end in a cross-signed root): no system root is
// needed. A leaf without a chain must be self-signed. A node whose clock is
// behind the issuance time checks the chain as of the leaf's NotBefore.
func verifyChain(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if len(chain) == 0 {
		roots.AddCert(leaf)
	} else {
		roots.AddCert(chain[len(chain)-1])
		for _, c := range chain[:len(chain)-1] {
			inter.AddCert(c)
		}
	}
	at := now
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate chain does not verify to the leaf: %w", err)
	}
	return nil
}

// decryptKey decrypts ACM's encrypted PKCS#8 key. The error never carries
// the passphrase or key bytes.
func decryptKey(text, passphrase string) (crypto.Signer, []byte, error) {
	blk, rest := pem.Decode([]byte(text))
	if blk == nil || len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, errors.New("bundle private key is not one PEM block")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "ENCRYPTED PRIVATE KEY":
		k, err = pkcs8.ParsePKCS8PrivateKey(blk.Bytes, []byte(passphrase))
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, nil, errors.New("bundle private key is not an encrypted PKCS#8 PEM block")
	}
	if err != nil {
		return nil, nil, errors.New("private key does not decrypt with the bundle passphrase")
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("bundle private key is of an unsupported type")
	}
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		return nil, nil, errors.New("bundle private key cannot be re-encoded as PKCS#8")
	}
	return s, der, nil
}

// checkPFX checks that the bundle's PFX opens with the passphrase and holds
// the checked leaf (Windows imports it as it is).
func checkPFX(m *material) error {
	if len(m.pkcs12) == 0 {
		return errors.New("bundle has no pkcs12")
	}
	_, cert, _, err := pkcs12.DecodeChain(m.pkcs12, m.passphrase)
	if err != nil {
		return errors.New("bundle pkcs12 does not open with the bundle passphrase")
	}
	if !bytes.Equal(cert.Raw, m.leaf.Raw) {
		return errors.New("bundle pkcs12 does not hold the bundle's certificate")
	}
	return nil
}
