//go:build integration && unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/testkit"
)

func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(s[:]))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// The binary reads the bundle and the keystore password from Secrets
// Manager (moto at AWS_ENDPOINT_URL, through the SDK's default chain) and
// installs a JKS keystore; a second run is unchanged.
func TestInstallAgainstMoto(t *testing.T) {
	bin := buildBinary(t)
	moto := testkit.StartRigT(t).Moto // behind the AWS model check
	exp := testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "Passphrase123")
	pfx, err := pkcs12.Modern.Encode(exp.Key, exp.Leaf, nil, exp.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	fp := fingerprint(exp.Leaf.Raw)
	b, _ := json.Marshal(map[string]string{
		"certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x", "serial": exp.Leaf.SerialNumber.Text(16),
		"fingerprintSha256": fp, "certificate": exp.Certificate, "certificateChain": exp.CertificateChain,
		"privateKey": exp.PrivateKey, "pkcs12": base64.StdEncoding.EncodeToString(pfx), "passphrase": exp.Passphrase,
	})
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		})})
	for id, v := range map[string]string{"certferry/shop-web": string(b), "certferry/shop-web/keystore": `{"password":"changeit-123"}`} {
		if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "srv")
	ks := filepath.Join(dir, "app", "keystore.jks")
	env := []string{"AWS_ENDPOINT_URL=" + moto.URL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir(), "AWS_SSM_REGION_NAME=us-east-1",
		"CERTFERRY_STATE_DIR=" + filepath.Join(t.TempDir(), "state"),
		"SSM_SecretId=certferry/shop-web", "SSM_CertName=shop-web", "SSM_ExpectedFingerprint=" + fp,
		"SSM_Format=jks", "SSM_KeystorePath=" + ks, "SSM_VerifyPort=0", "SSM_AllowedPrefixes=" + dir,
		"SSM_CertPath=/etc/ssl/certs/certferry.pem", "SSM_KeyPath=/etc/ssl/private/certferry.key"}
	run := func() (int, string) {
		cmd := exec.Command(bin, "install")
		cmd.Env = env
		out, err := cmd.Output()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Logf("%s", out)
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run()
	if code != 0 || !strings.Contains(out, `"status":"installed"`) || len(out) > 2000 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	testkit.AssertNoSecrets(t, "output", out, exp.Passphrase, "changeit-123", "PRIVATE KEY")
	data, err := os.ReadFile(ks)
	if err != nil {
		t.Fatal(err)
	}
	store := keystore.New()
	if err := store.Load(bytes.NewReader(data), []byte("changeit-123")); err != nil {
		t.Fatal(err)
	}
	if chain, err := store.GetPrivateKeyEntryCertificateChain("shop-web"); err != nil || !bytes.Equal(chain[0].Content, exp.Leaf.Raw) {
		t.Fatalf("keystore entry: %v", err)
	}
	if fi, _ := os.Stat(ks); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keystore mode %v", fi.Mode())
	}
	if code, out := run(); code != 0 || !strings.Contains(out, `"status":"unchanged"`) {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
}
