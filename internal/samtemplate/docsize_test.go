package samtemplate

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// maxDocumentBytes: "The content of the document must not exceed 64KB. This
// quota also includes the content specified for input parameters at
// runtime" (CreateDocument, Systems Manager API Reference, Content;
// MaxDocumentSizeExceeded: "The size limit of a document is 64 KB").
const maxDocumentBytes = 64 * 1024

// maxParamBytes is the longest value certferry can send for each document
// parameter (internal/spec and internal/config bound them; the SecretId
// at CreateSecret's Name limit).
var maxParamBytes = map[string]int{
	"SecretId": 512, "CertName": 63, "ExpectedFingerprint": 95, "Region": 32, "Format": 8,
	"CertPath": 1024, "KeyPath": 1024, "ChainPath": 1024, "KeystorePath": 1024,
	"Owner": 32, "Group": 32, "CertMode": 4, "KeyMode": 4, "ReloadService": 64,
	"VerifyPort": 5, "VerifyAddress": 253, "ServerName": 253, "Starttls": 4,
	"AllowedPrefixes": 4096, "CertStore": 77, "IisSite": 128,
	"InstallerBucket": 63, "InstallerKeyPrefix": 256,
	"InstallerSha256LinuxAmd64": 64, "InstallerSha256LinuxArm64": 64, "InstallerSha256WindowsAmd64": 64,
}

// The document stays within SSM's 64 KB even with every parameter at its
// longest, substituted at each {{Name}} (older agents substitute; the
// values count as well), so no SendCommand ever meets
// MaxDocumentSizeExceeded as the document grows.
func TestDocumentWithinSizeQuota(t *testing.T) {
	raw, err := os.ReadFile("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc) // CloudFormation hands the Content over as JSON or YAML
	if err != nil {
		t.Fatal(err)
	}
	size := max(len(raw), len(js))
	params, _ := doc["parameters"].(map[string]any)
	for name := range params {
		n, ok := maxParamBytes[name]
		if !ok {
			t.Errorf("document parameter %s has no longest value in maxParamBytes", name)
			continue
		}
		refs := strings.Count(string(raw), "{{"+name+"}}")
		size += n + refs*max(0, n-len("{{"+name+"}}"))
	}
	t.Logf("document %d bytes (YAML), %d (JSON); with every parameter at its longest: %d of %d", len(raw), len(js), size, maxDocumentBytes)
	if size > maxDocumentBytes {
		t.Fatalf("document with parameters at their longest is %d bytes, over SSM's %d", size, maxDocumentBytes)
	}
}
