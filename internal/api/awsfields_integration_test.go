//go:build integration

package api_test

// The model check of awsfields_test.go's rows: needs botocore's API models
// (python3 with botocore, installed with the aws CLI and moto), so it runs
// in the integration tier.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// awsChecker is an AWS endpoint that only checks: each request against the
// model and the documented constraints outside it; it answers as AWS
// would refuse, so the production code goes no further than one call.
type awsChecker struct {
	srv *httptest.Server
	doc *agentrun.Document
	mu  sync.Mutex
	bad []string
}

var (
	secretNameChars = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)
	// Secrets Manager tags ("TagResource", Secrets Manager API Reference):
	// letters, spaces and numbers representable in UTF-8, and + - = . _ : / @.
	tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}+\-=._:/@]*$`)
)

func newAWSChecker(t *testing.T) *awsChecker {
	doc, err := agentrun.Load("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := &awsChecker{doc: doc}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, vs := awsmodel.Check(r, body)
		var bad []string
		for _, v := range vs {
			bad = append(bad, v.String())
		}
		bad = append(bad, c.documented(req)...)
		c.mu.Lock()
		for _, b := range bad {
			c.bad = append(c.bad, req.Op()+": "+b)
		}
		c.mu.Unlock()
		code := "StopHere"
		if req.Op() == "secretsmanager.PutSecretValue" {
			code = "ResourceNotFoundException" // so bundle.Put goes on to CreateSecret
		}
		w.Header().Set("X-Amzn-ErrorType", code)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"__type":%q,"message":"checked"}`, code)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// documented checks what AWS documents beyond the API model.
func (c *awsChecker) documented(req awsmodel.Request) []string {
	in, _ := req.Input.(map[string]any)
	var bad []string
	switch req.Op() {
	case "ssm.SendCommand":
		// "SendCommand" (Systems Manager API Reference): InvalidParameters
		// when a value does not match the document's allowedPattern.
		params, _ := in["Parameters"].(map[string]any)
		for name, vals := range params {
			p, ok := c.doc.Parameters[name]
			if !ok {
				bad = append(bad, "parameter "+name+" is not in the document")
				continue
			}
			m, err := awsmodel.CompilePattern(p.AllowedPattern)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			for _, v := range vals.([]any) {
				if !m.Match(v.(string)) {
					bad = append(bad, fmt.Sprintf("parameter %s (%d characters) does not match the document's allowedPattern %s", name, utf8.RuneCountInString(v.(string)), p.AllowedPattern))
				}
			}
		}
	case "secretsmanager.CreateSecret":
		// "CreateSecret" (Secrets Manager API Reference): "The secret name
		// can contain ASCII letters, numbers, and the following characters:
		// /_+=.@-".
		if n, _ := in["Name"].(string); !secretNameChars.MatchString(n) {
			bad = append(bad, "secret name holds characters other than ASCII letters, digits and /_+=.@-")
		}
		tags, _ := in["Tags"].([]any)
		for _, t := range tags {
			tag := t.(map[string]any)
			for _, k := range []string{"Key", "Value"} {
				if s, _ := tag[k].(string); !tagChars.MatchString(s) {
					bad = append(bad, fmt.Sprintf("tag %s holds characters Secrets Manager tags refuse", k))
				}
			}
		}
	case "dynamodb.GetItem", "dynamodb.Query":
		// Key values (and an index's key values in a key condition) are
		// at most 2048 bytes (partition) and 1024 bytes (sort): "Service,
		// account, and table quotas in Amazon DynamoDB".
		for _, m := range []string{"Key", "ExpressionAttributeValues", "ExclusiveStartKey"} {
			vals, _ := in[m].(map[string]any)
			for attr, v := range vals {
				av, _ := v.(map[string]any)
				if str, _ := av["S"].(string); len(str) > 2048 || attr == "SK" && len(str) > 1024 {
					bad = append(bad, fmt.Sprintf("%s.%s is %d bytes, over DynamoDB's key size", m, attr, len(str)))
				}
			}
		}
	case "dynamodb.PutItem":
		// "Service, account, and table quotas in Amazon DynamoDB": partition
		// key values at most 2048 bytes, sort key values at most 1024 bytes
		// (GSI keys alike).
		item, _ := in["Item"].(map[string]any)
		for attr, limit := range map[string]int{"PK": 2048, "SK": 1024, "certificateArn": 2048} {
			if av, ok := item[attr].(map[string]any); ok {
				if s, _ := av["S"].(string); len(s) > limit {
					bad = append(bad, fmt.Sprintf("key attribute %s is %d bytes, over DynamoDB's %d", attr, len(s), limit))
				}
			}
		}
	}
	return bad
}

func (c *awsChecker) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bad
	c.bad = nil
	return b
}

// send runs every production call an accepted spec reaches AWS through.
func (c *awsChecker) send(ctx context.Context, sp spec.Spec) {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(c.srv.URL), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})}
	const prefix = "certferry/" // CERTFERRY_SECRET_PREFIX's default
	serverName := sp.Linux.ServerName
	if serverName == "" {
		serverName = "shop.example.com"
	}
	_, _ = fleet.New(ssm.NewFromConfig(cfg), fleet.Options{Document: "certferry-install"}).Send(ctx, fleet.Install{
		Spec: sp, SecretID: prefix + sp.Name, Region: "us-east-1", ServerName: serverName,
		ExpectedFingerprint: strings.TrimSuffix(strings.Repeat("AB:", 32), ":"), Serial: strings.TrimSuffix(strings.Repeat("0a:", 20), ":"),
		SendID: fleet.NewSendID(),
	})
	acmc := certs.NewClient(acm.NewFromConfig(cfg))
	acmc.ExportAttempts = 1
	_, _ = acmc.Describe(ctx, sp.CertificateARN)
	_, _ = acmc.Export(ctx, sp.CertificateARN, []byte(strings.Repeat("p", bundle.PassphraseLength)))
	_, _ = bundle.NewStore(secretsmanager.NewFromConfig(cfg), prefix, "").Put(ctx, sp.Name, &bundle.Bundle{CertificateARN: sp.CertificateARN}, fleet.NewSendID())
	_, _ = inventory.NewStore(dynamodb.NewFromConfig(cfg), "certferry").CreateCert(ctx, sp, inventory.Claim{Token: fleet.NewSendID(), Serial: "0a", Until: 1})
	if sp.Rollout != nil && sp.Rollout.StopAlarm != "" {
		_ = api.NewAlarmChecker(app.NewCloudWatch(cfg), "us-east-1").Check(ctx, sp.Rollout.StopAlarm)
	}
}

// TestAPIFieldsReachAWSWithinModel: for every field, whatever the API
// accepts, AWS accepts.
func TestAPIFieldsReachAWSWithinModel(t *testing.T) {
	checker := newAWSChecker(t)
	ctx := context.Background()

	// The base body is accepted and clean.
	raw, _ := json.Marshal(baseBody())
	sp, err := accept(string(raw))
	if err != nil {
		t.Fatalf("base body refused: %v", err)
	}
	checker.send(ctx, sp)
	if bad := checker.take(); len(bad) > 0 {
		t.Fatalf("the base body reaches AWS with violations: %v", bad)
	}

	for _, row := range rows() {
		t.Run(row.field, func(t *testing.T) {
			cands := append([]any(nil), row.values...)
			if row.gen != nil {
				cands = append(cands, row.gen()...)
			}
			accepted := 0
			for _, v := range cands {
				body := baseBody()
				row.set(body, v)
				raw, _ := json.Marshal(body)
				sp, err := accept(string(raw))
				if err != nil {
					continue // refused with 400 before anything is written
				}
				accepted++
				checker.send(ctx, sp)
				if bad := checker.take(); len(bad) > 0 {
					t.Errorf("the API accepts %s = %s, which AWS refuses:\n  %s", row.field, show(v), strings.Join(bad, "\n  "))
				}
			}
			if accepted < 2 {
				t.Errorf("only %d of %d candidate values accepted: the row proves little", accepted, len(cands))
			}
		})
	}

	// The AWS sample's body shape reaches the same members.
	sample := map[string][]string{
		"CertificateArn": variants(testARN, 0, 2100), "CertName": variants("shop-web", 0, 600),
		"TargetTagKey": variants("env", 0, 200), "TargetTagValue": variants("prod", 0, 300),
	}
	for field, cands := range sample {
		t.Run("sample "+field, func(t *testing.T) {
			for _, v := range cands {
				body := map[string]any{"CertificateArn": testARN, "CertName": "shop-web", "TargetTagKey": "env", "TargetTagValue": "prod"}
				body[field] = v
				raw, _ := json.Marshal(body)
				sp, err := accept(string(raw))
				if err != nil {
					continue
				}
				checker.send(ctx, sp)
				if bad := checker.take(); len(bad) > 0 {
					t.Errorf("the API accepts %s = %s, which AWS refuses:\n  %s", field, show(v), strings.Join(bad, "\n  "))
				}
			}
		})
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		return fmt.Sprintf("%s… (%d bytes)", b[:120], len(b))
	}
	return string(b)
}

func baseBody() map[string]any {
	return map[string]any{
		"certificateArn": testARN,
		"name":           "shop-web",
		"targets":        []any{map[string]any{"key": "tag:env", "values": []any{"prod"}}},
		"linux": map[string]any{"certPath": "/etc/ssl/certs/shop-web.pem", "keyPath": "/etc/ssl/private/shop-web.key",
			"reloadService": "nginx", "verifyPort": 443, "serverName": "shop.example.com"},
		"windows": map[string]any{"store": `LocalMachine\My`, "iisSite": "Default Web Site"},
	}
}

// accept runs the API's side of onboarding: parse, defaults, validation.
func accept(body string) (spec.Spec, error) {
	sp, err := api.ParseOnboard(body, false)
	if err != nil {
		return sp, err
	}
	sp.ApplyDefaults()
	err = sp.Validate(func(arn string) error {
		if !certs.ARNPattern.MatchString(arn) {
			return fmt.Errorf("not an ACM certificate ARN")
		}
		return nil
	})
	return sp, err
}
