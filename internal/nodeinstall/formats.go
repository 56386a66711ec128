//go:build unix

package nodeinstall

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fileKind decides a new file's default mode and which mode option applies.
type fileKind int

const (
	kindCert fileKind = iota // certificates only: CertMode, default 0644
	kindKey                  // holds a private key: KeyMode, default 0600 (0640 with Group)
)

// target is one file of the set a format writes.
type target struct {
	Path    string
	Kind    fileKind
	Content []byte
	// same reports whether existing content already holds what Content
	// holds (keystores are re-encrypted with fresh salts on every write).
	same func(existing []byte) bool
}

func pemCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// render returns the files format f writes for m.
func render(p Params, m *material, storePass string) ([]target, error) {
	chain := m.chain // as ACM returned it, root included
	full := pemCerts(append([]*x509.Certificate{m.leaf}, chain...)...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: m.keyPKCS8})
	switch p.Format {
	case FormatPEM:
		return []target{
			{Path: p.CertPath, Kind: kindCert, Content: full},
			{Path: p.KeyPath, Kind: kindKey, Content: keyPEM},
		}, nil
	case FormatSplit:
		return []target{
			{Path: p.CertPath, Kind: kindCert, Content: pemCerts(m.leaf)},
			{Path: p.ChainPath, Kind: kindCert, Content: pemCerts(chain...)},
			{Path: p.KeyPath, Kind: kindKey, Content: keyPEM},
		}, nil
	case FormatCombined:
		return []target{{Path: p.CertPath, Kind: kindKey, Content: append(full, keyPEM...)}}, nil
	case FormatPKCS12:
		data, err := pkcs12.Modern.Encode(m.key, m.leaf, chain, storePass)
		if err != nil {
			return nil, fmt.Errorf("encode PKCS#12 keystore: %w", err)
		}
		return []target{{Path: p.KeystorePath, Kind: kindKey, Content: data, same: func(old []byte) bool {
			return samePKCS12(old, m, chain, storePass)
		}}}, nil
	case FormatJKS:
		data, err := encodeJKS(p.CertName, m, chain, storePass)
		if err != nil {
			return nil, err
		}
		return []target{{Path: p.KeystorePath, Kind: kindKey, Content: data, same: func(old []byte) bool {
			return sameJKS(old, p.CertName, m, chain, storePass)
		}}}, nil
	}
	return nil, fmt.Errorf("unknown format %q", p.Format)
}

func encodeJKS(alias string, m *material, chain []*x509.Certificate, storePass string) ([]byte, error) {
	ks := keystore.New(keystore.WithCustomRandomNumberGenerator(rand.Reader))
	entry := keystore.PrivateKeyEntry{CreationTime: m.leaf.NotBefore, PrivateKey: m.keyPKCS8}
	for _, c := range append([]*x509.Certificate{m.leaf}, chain...) {
		entry.CertificateChain = append(entry.CertificateChain, keystore.Certificate{Type: "X509", Content: c.Raw})
	}
	pw := []byte(storePass)
	if err := ks.SetPrivateKeyEntry(alias, entry, pw); err != nil {
		return nil, fmt.Errorf("build JKS keystore: %w", err)
	}
	var b bytes.Buffer
	if err := ks.Store(&b, pw); err != nil {
		return nil, fmt.Errorf("encode JKS keystore: %w", err)
	}
	return b.Bytes(), nil
}

func samePKCS12(old []byte, m *material, chain []*x509.Certificate, storePass string) bool {
	key, cert, cas, err := pkcs12.DecodeChain(old, storePass)
	if err != nil || !bytes.Equal(cert.Raw, m.leaf.Raw) || len(cas) != len(chain) {
		return false
	}
	for i := range cas {
		if !bytes.Equal(cas[i].Raw, chain[i].Raw) {
			return false
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	return err == nil && bytes.Equal(der, m.keyPKCS8)
}

func sameJKS(old []byte, alias string, m *material, chain []*x509.Certificate, storePass string) bool {
	ks := keystore.New()
	pw := []byte(storePass)
	if err := ks.Load(bytes.NewReader(old), pw); err != nil || len(ks.Aliases()) != 1 {
		return false
	}
	e, err := ks.GetPrivateKeyEntry(alias, pw)
	if err != nil || !bytes.Equal(e.PrivateKey, m.keyPKCS8) || len(e.CertificateChain) != len(chain)+1 {
		return false
	}
	for i, c := range append([]*x509.Certificate{m.leaf}, chain...) {
		if !bytes.Equal(e.CertificateChain[i].Content, c.Raw) {
			return false
		}
	}
	return true
}

// fetchKeystorePassword reads <SecretId>/keystore.
func fetchKeystorePassword(ctx context.Context, api SecretsAPI, secretID string) (string, error) {
	ks := secretID + KeystoreSecretSuffix
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(ks)})
	if err != nil {
		return "", fmt.Errorf("read keystore password secret %s: %w", ks, err)
	}
	var v struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil || v.Password == "" {
		return "", fmt.Errorf("read keystore password secret %s: value is not {\"password\": \"...\"}", ks)
	}
	return v.Password, nil
}
