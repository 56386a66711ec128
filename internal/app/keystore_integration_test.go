//go:build integration

package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/spec"
)

// A jks name through the real handler on moto: the keystore password
// secret is created once (KMS key of the stack), the command carries the
// installer options and the allowed prefixes, a redeploy creates nothing
// new, and the password joins the suite's leak check.
func TestOnboardKeystoreFormat(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("app.example.com")
	body := fmt.Sprintf(`{"certificateArn": %q, "name": "app", "targets": [{"key": "tag:env", "values": ["prod"]}],
		"linux": {"format": "jks", "keystorePath": "/opt/tomcat/conf/app.jks", "owner": "tomcat", "group": "tomcat",
		          "keyMode": "0640", "reloadService": "tomcat", "verifyPort": 8443, "verifyAddress": "::1"}}`, arn)
	if status, ans := r.post(body); status != 202 {
		t.Fatalf("onboard jks: %d %v", status, ans)
	}
	id := r.cfg.SecretPrefix + "app/keystore"
	ks, err := r.sm.GetSecretValue(r.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("keystore password secret %s: %v", id, err)
	}
	var v struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(ks.SecretString)), &v); err != nil || len(v.Password) < 32 {
		t.Fatalf("keystore secret value is not {\"password\": <32+ chars>}: %v", err)
	}
	seenMu.Lock()
	seen = append(seen, v.Password) // the leak check looks for it everywhere
	seenMu.Unlock()
	d, err := r.sm.DescribeSecret(r.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.KmsKeyId) != r.cfg.KMSKeyID {
		t.Errorf("keystore secret KMS key %q, want the stack's %q", aws.ToString(d.KmsKeyId), r.cfg.KMSKeyID)
	}

	cmds := r.commands()
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1", len(cmds))
	}
	p := cmds[0].Parameters
	for k, want := range map[string]string{
		"Format": "jks", "KeystorePath": "/opt/tomcat/conf/app.jks", "CertPath": "", "KeyPath": "", "Owner": "tomcat",
		"Group": "tomcat", "KeyMode": "0640", "VerifyPort": "8443", "VerifyAddress": "::1",
		// The rig's configuration names no prefixes: the default list applies.
		"AllowedPrefixes": strings.Join(spec.DefaultAllowedPrefixes, ":"),
	} {
		if !slices.Equal(p[k], []string{want}) {
			t.Errorf("parameter %s = %q, want %q", k, p[k], want)
		}
	}
	for _, k := range []string{"InstallerBucket", "InstallerKeyPrefix", "InstallerSha256LinuxAmd64", "InstallerSha256LinuxArm64", "InstallerSha256WindowsAmd64"} {
		if _, ok := p[k]; !ok {
			t.Errorf("the command lacks parameter %s", k)
		}
	}

	// A redeploy: a second command, the same keystore secret and version.
	before := r.counts()
	if status, ans := r.call("POST", "/certificates/app/deployments", "app", ""); status != 202 {
		t.Fatalf("redeploy: %d %v", status, ans)
	}
	after := r.counts()
	if after.secrets != before.secrets || after.versions != before.versions || after.commands != before.commands+1 {
		t.Fatalf("redeploy: %+v -> %+v, want one more command and no new secret or version", before, after)
	}
	again, err := r.sm.GetSecretValue(r.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil || aws.ToString(again.VersionId) != aws.ToString(ks.VersionId) {
		t.Fatalf("keystore secret after redeploy: version %v, %v; want it untouched", aws.ToString(again.VersionId), err)
	}
}
