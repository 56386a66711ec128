//go:build integration

package awsmodel

// The checks that read botocore's API models (python3 with botocore,
// installed with the aws CLI and moto): the integration tier.

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The suite's model check needs botocore: missing, it is a failure, never
// a silent pass (TestLoadFailsWithoutModels covers the error itself).
func TestBotocoreInstalled(t *testing.T) {
	if _, err := Dir(); err != nil {
		t.Fatalf("botocore must be installed for the suite: %v", err)
	}
}

// checkedServices are the services the rig sees requests for.
var checkedServices = []string{"acm", "acm-pca", "secretsmanager", "dynamodb", "ssm", "sqs", "sns", "ec2", "s3", "kms", "sts"}

// signed is an AWS request as the SDK sends it (the checker reads the
// SigV4 credential scope; the signature itself is moto's business).
func signed(service, method, target, path, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1"+path, strings.NewReader(body))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261129/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=00")
	if target != "" {
		r.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func jsonReq(service, target, body string) (*http.Request, string) {
	return signed(service, "POST", target, "/", "application/x-amz-json-1.1", body), body
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestCheckCatches plants one violation of each kind of constraint and
// checks that the checker names the member and the constraint; the clean
// requests beside them pass.
func TestCheckCatches(t *testing.T) {
	long := "arn:aws:acm:us-east-1:123456789012:certificate/" + strings.Repeat("a", 2048)
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = `"i-0123456789abcdef0"`
	}
	tests := []struct {
		name       string
		req        *http.Request
		body       string
		op         string
		constraint string // "" = valid
		member     string
	}{
		{name: "clean describe", op: "acm.DescribeCertificate",
			req: mustJSON("acm", "CertificateManager.DescribeCertificate", `{"CertificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/abc"}`)},
		{name: "missing required", op: "ssm.SendCommand", constraint: "required", member: "DocumentName",
			req: mustJSON("ssm", "AmazonSSM.SendCommand", `{"InstanceIds":["i-0123456789abcdef0"]}`)},
		{name: "too long", op: "acm.DescribeCertificate", constraint: "length", member: "CertificateArn",
			req: mustJSON("acm", "CertificateManager.DescribeCertificate", `{"CertificateArn":"`+long+`"}`)},
		{name: "pattern", op: "ssm.SendCommand", constraint: "pattern", member: "DocumentName",
			req: mustJSON("ssm", "AmazonSSM.SendCommand", `{"DocumentName":"bad name!"}`)},
		{name: "enum", op: "ssm.ListCommands", constraint: "enum", member: "Filters.1.member.key",
			req: mustJSON("ssm", "AmazonSSM.ListCommands", `{"Filters":[{"key":"Nope","value":"x"}]}`)},
		{name: "range", op: "ssm.ListCommands", constraint: "range", member: "MaxResults",
			req: mustJSON("ssm", "AmazonSSM.ListCommands", `{"MaxResults":51}`)},
		{name: "list size", op: "ssm.SendCommand", constraint: "size", member: "InstanceIds",
			req: mustJSON("ssm", "AmazonSSM.SendCommand", `{"DocumentName":"certferry-install","InstanceIds":[`+strings.Join(ids, ",")+`]}`)},
		{name: "map size", op: "dynamodb.BatchWriteItem", constraint: "size", member: "RequestItems",
			req: signed("dynamodb", "POST", "DynamoDB_20120810.BatchWriteItem", "/", "application/x-amz-json-1.0", `{"RequestItems":{}}`)},
		{name: "blob too short", op: "acm.ExportCertificate", constraint: "length", member: "Passphrase",
			req: mustJSON("acm", "CertificateManager.ExportCertificate", `{"CertificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/abc","Passphrase":"`+b64("abc")+`"}`)},
		{name: "blob fits", op: "acm.ExportCertificate",
			req: mustJSON("acm", "CertificateManager.ExportCertificate", `{"CertificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/abc","Passphrase":"`+b64(strings.Repeat("p", 128))+`"}`)},
		{name: "unknown member", op: "ssm.ListCommands", constraint: "unknown", member: "Bogus",
			req: mustJSON("ssm", "AmazonSSM.ListCommands", `{"Bogus":1}`)},
		{name: "characters, not bytes", op: "ssm.SendCommand",
			req: mustJSON("ssm", "AmazonSSM.SendCommand", `{"DocumentName":"certferry-install","Comment":"`+strings.Repeat("é", 100)+`"}`)},
		{name: "one character too many", op: "ssm.SendCommand", constraint: "length", member: "Comment",
			req: mustJSON("ssm", "AmazonSSM.SendCommand", `{"DocumentName":"certferry-install","Comment":"`+strings.Repeat("é", 101)+`"}`)},
		{name: "unknown member nested in a map", op: "dynamodb.GetItem", constraint: "unknown", member: "Key.PK.X",
			req: signed("dynamodb", "POST", "DynamoDB_20120810.GetItem", "/", "application/x-amz-json-1.0", `{"TableName":"certferry","Key":{"PK":{"X":"a"}}}`)},
		{name: "list size nested in a map", op: "dynamodb.BatchWriteItem", constraint: "size", member: "RequestItems.certferry",
			req: signed("dynamodb", "POST", "DynamoDB_20120810.BatchWriteItem", "/", "application/x-amz-json-1.0", `{"RequestItems":{"certferry":[`+strings.TrimSuffix(strings.Repeat(`{"DeleteRequest":{"Key":{"PK":{"S":"a"}}}},`, 26), ",")+`]}}`)},
		{name: "query clean", op: "sns.Publish",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry&Message=hi&MessageAttributes.entry.1.Name=kind&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=expired")},
		{name: "query missing required", op: "sns.Publish", constraint: "required", member: "Message",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry")},
		{name: "query unknown member", op: "sns.Publish", constraint: "unknown", member: "Bogus",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&Message=hi&Bogus=1")},
		{name: "documented: SNS subject of 100 characters", op: "sns.Publish", constraint: "documented", member: "Subject",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry&Message=hi&Subject="+strings.Repeat("s", 100))},
		{name: "documented: SNS subject of 99 characters", op: "sns.Publish",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry&Message=hi&Subject="+strings.Repeat("s", 99))},
		{name: "documented: SNS subject with a line break", op: "sns.Publish", constraint: "documented", member: "Subject",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry&Message=hi&Subject=a%0Ab")},
		{name: "documented: SNS message over 256 KB", op: "sns.Publish", constraint: "documented", member: "Message",
			req: signed("sns", "POST", "", "/", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Acertferry&Message="+strings.Repeat("m", 262145))},
		{name: "documented: secret name characters", op: "secretsmanager.CreateSecret", constraint: "documented", member: "Name",
			req: mustJSON("secretsmanager", "secretsmanager.CreateSecret", `{"Name":"certferry/shop web"}`)},
		{name: "ec2 clean", op: "ec2.DescribeImages",
			req: signed("ec2", "POST", "", "/", "application/x-www-form-urlencoded", "Action=DescribeImages&Version=2016-11-15&Owner.1=amazon&Filter.1.Name=name&Filter.1.Value.1=al2023*")},
		{name: "s3 put object", op: "s3.PutObject",
			req: signed("s3", "PUT", "", "/certferry-bucket/installer/linux-amd64?x-id=PutObject", "", "binary")},
		{name: "s3 list objects v2", op: "s3.ListObjectsV2",
			req: signed("s3", "GET", "", "/certferry-bucket?list-type=2&prefix=installer%2F", "", "")},
		{name: "s3 head object", op: "s3.HeadObject",
			req: signed("s3", "HEAD", "", "/certferry-bucket/installer/linux-amd64", "", "")},
		{name: "unsigned", op: ".", constraint: "operation",
			req: httptest.NewRequest("GET", "http://127.0.0.1/certferry-bucket/x", nil)},
		{name: "unknown operation", op: "ssm.Nope", constraint: "operation",
			req: mustJSON("ssm", "AmazonSSM.Nope", `{}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readBody(t, tt.req)
			got, vs := Check(tt.req, body)
			if tt.constraint != "operation" && got.Op() != tt.op {
				t.Errorf("op %q, want %q", got.Op(), tt.op)
			}
			if tt.constraint == "" {
				if len(vs) != 0 {
					t.Fatalf("clean request refused: %v", vs)
				}
				return
			}
			if len(vs) != 1 {
				t.Fatalf("want one %s violation, got %v", tt.constraint, vs)
			}
			v := vs[0]
			if v.Constraint != tt.constraint || (tt.member != "" && v.Member != tt.member) {
				t.Errorf("got %s at %q (%s), want %s at %q", v.Constraint, v.Member, v.Message, tt.constraint, tt.member)
			}
			if tt.member != "" && !strings.Contains(v.Message, tt.member) {
				t.Errorf("message %q does not name %s", v.Message, tt.member)
			}
		})
	}
}

func mustJSON(service, target, body string) *http.Request {
	r, _ := jsonReq(service, target, body)
	return r
}

func readBody(t *testing.T, r *http.Request) []byte {
	t.Helper()
	var b strings.Builder
	if r.Body != nil {
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
	}
	return []byte(b.String())
}

// TestApproximationsListed compiles every pattern of the services the rig
// checks and requires each one RE2 cannot take as written to be listed in
// docs/aws-contracts.md, so the list stays complete.
func TestApproximationsListed(t *testing.T) {
	for _, s := range checkedServices {
		m, err := Load(s)
		if err != nil {
			t.Fatal(err)
		}
		for n, sh := range m.Shapes {
			if sh.Pattern == "" {
				continue
			}
			if _, err := CompilePattern(sh.Pattern); err != nil {
				t.Errorf("%s shape %s: %v", s, n, err)
			}
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "aws-contracts.md"))
	if err != nil {
		t.Fatal(err)
	}
	as := Approximations()
	if len(as) == 0 {
		t.Fatal("no approximations: the models certferry uses have some (\\p{Print}, lookaheads)")
	}
	for _, a := range as {
		t.Logf("%s | %s | %s | %s", a.Pattern, a.Engine, a.Translated, a.Note)
		if !strings.Contains(string(doc), "`"+a.Pattern+"`") {
			t.Errorf("docs/aws-contracts.md does not list the approximated pattern `%s` (%s: %s)", a.Pattern, a.Engine, a.Note)
		}
	}
}
