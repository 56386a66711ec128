//go:build integration

package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// shared is one rig for the tests that can share it (each takes the
// violations it planted); TestMain stops it and fails the run on any left.
var shared struct {
	once sync.Once
	rig  *Rig
	err  error
}

func sharedRig(t *testing.T) *Rig {
	t.Helper()
	shared.once.Do(func() { shared.rig, shared.err = StartRig(context.Background()) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	t.Cleanup(func() {
		for _, v := range shared.rig.TakeViolations() {
			t.Errorf("AWS model check: %s", v)
		}
	})
	return shared.rig
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.rig != nil {
		code = shared.rig.Finish(code)
	}
	os.Exit(code)
}

func rigConfig(t *testing.T, endpoint string) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"),
		awsconfig.WithBaseEndpoint(endpoint), awsconfig.WithRetryMaxAttempts(1),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rawCall signs and sends a request the SDK would refuse to send (it
// checks required members itself), as AWS would receive it.
func rawCall(t *testing.T, cfg aws.Config, endpoint, service, target, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256([]byte(body))
	creds, _ := cfg.Credentials.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRigCatchesPlantedViolations sends one request per kind of constraint
// through the real SDK clients (raw signed HTTP where the SDK would stop
// it first), and checks that each is answered 400 as AWS does and
// recorded, and that clean requests pass untouched.
func TestRigCatchesPlantedViolations(t *testing.T) {
	rig := sharedRig(t)
	ctx := context.Background()
	cfg := rigConfig(t, rig.URL)
	acmc, ssmc, sm, ddb, snsc := acm.NewFromConfig(cfg), ssm.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), sns.NewFromConfig(cfg)

	// Clean requests reach moto and record nothing.
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("certferry-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("hello"), Subject: aws.String("certferry")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("certferry/shop-web"), SecretString: aws.String("{}"),
		ClientRequestToken: aws.String(strings.Repeat("a", 32))}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssmc.ListCommands(ctx, &ssm.ListCommandsInput{MaxResults: aws.Int32(50)}); err != nil {
		t.Fatal(err)
	}
	if vs := rig.TakeViolations(); len(vs) != 0 {
		t.Fatalf("clean requests recorded violations: %v", vs)
	}

	longARN := "arn:aws:acm:us-east-1:123456789012:certificate/" + strings.Repeat("a", 2048)
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = "i-0123456789abcdef0"
	}
	writes := make([]ddbtypes.WriteRequest, 26)
	for i := range writes {
		writes[i] = ddbtypes.WriteRequest{DeleteRequest: &ddbtypes.DeleteRequest{Key: map[string]ddbtypes.AttributeValue{"PK": &ddbtypes.AttributeValueMemberS{Value: "a"}}}}
	}
	sdkCalls := []struct {
		name, constraint, member string
		call                     func() error
	}{
		{"too long", "length", "CertificateArn", func() error {
			_, err := acmc.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(longARN)})
			return err
		}},
		{"pattern", "pattern", "DocumentName", func() error {
			_, err := ssmc.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("bad name!")})
			return err
		}},
		{"enum", "enum", "Filters.1.member.key", func() error {
			_, err := ssmc.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{{Key: "Nope", Value: aws.String("x")}}})
			return err
		}},
		{"range", "range", "MaxResults", func() error {
			_, err := ssmc.ListCommands(ctx, &ssm.ListCommandsInput{MaxResults: aws.Int32(51)})
			return err
		}},
		{"list size", "size", "InstanceIds", func() error {
			_, err := ssmc.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: ids})
			return err
		}},
		{"map size", "size", "RequestItems", func() error {
			_, err := ddb.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{}})
			return err
		}},
		{"list size in a map", "size", "RequestItems.certferry", func() error {
			_, err := ddb.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{"certferry": writes}})
			return err
		}},
		{"blob size", "length", "Passphrase", func() error {
			_, err := acmc.ExportCertificate(ctx, &acm.ExportCertificateInput{CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/abc"), Passphrase: []byte("abc")})
			return err
		}},
		{"length in characters", "length", "ClientRequestToken", func() error {
			// 32 characters, 64 bytes: AWS counts characters, and 32 is the minimum.
			_, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("certferry/shop-web"), SecretString: aws.String("{}"), ClientRequestToken: aws.String(strings.Repeat("é", 31))})
			return err
		}},
	}
	for _, c := range sdkCalls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" || !strings.Contains(api.ErrorMessage(), c.member) {
				t.Fatalf("want a ValidationException naming %s, got %v", c.member, err)
			}
			vs := rig.TakeViolations()
			if len(vs) != 1 || vs[0].Constraint != c.constraint || vs[0].Member != c.member {
				t.Fatalf("recorded %v, want one %s violation at %s", vs, c.constraint, c.member)
			}
		})
	}

	raw := []struct {
		name, service, target, contentType, body, constraint, member, code string
	}{
		{"missing required", "ssm", "AmazonSSM.SendCommand", "application/x-amz-json-1.1", `{"Comment":"x"}`, "required", "DocumentName", "ValidationException"},
		{"unknown member", "acm", "CertificateManager.DescribeCertificate", "application/x-amz-json-1.1",
			`{"CertificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/abc","Certificatearn":"x"}`, "unknown", "Certificatearn", "ValidationException"},
		{"query missing required", "sns", "", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&TopicArn=" + url.QueryEscape(*topic.TopicArn), "required", "Message", "InvalidParameter"},
		{"query unknown member", "sns", "", "application/x-www-form-urlencoded", "Action=Publish&Version=2010-03-31&Message=x&TopicArn=" + url.QueryEscape(*topic.TopicArn) + "&Subjekt=x", "unknown", "Subjekt", "InvalidParameter"},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawCall(t, cfg, rig.URL, c.service, c.target, c.contentType, c.body)
			if status != 400 || !strings.Contains(body, c.code) || !strings.Contains(body, c.member) {
				t.Fatalf("answer %d %s, want 400 %s naming %s", status, body, c.code, c.member)
			}
			vs := rig.TakeViolations()
			if len(vs) != 1 || vs[0].Constraint != c.constraint || vs[0].Member != c.member {
				t.Fatalf("recorded %v, want one %s violation at %s", vs, c.constraint, c.member)
			}
		})
	}
}

// A violation that the code under test swallows still fails the run:
// Finish turns a passing exit code into 1 and lists what AWS would refuse.
func TestFinishFailsTheRunOnViolations(t *testing.T) {
	t.Parallel() // rigs of its own
	rig, err := StartRig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := rigConfig(t, rig.URL)
	_, _ = ssm.NewFromConfig(cfg).ListCommands(context.Background(), &ssm.ListCommandsInput{MaxResults: aws.Int32(500)}) // error swallowed, as a careless caller would
	if got := rig.Finish(0); got != 1 {
		t.Fatalf("Finish(0) = %d with a violation recorded, want 1", got)
	}

	clean, err := StartRig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := clean.Finish(0); got != 0 {
		t.Fatalf("Finish(0) = %d without violations, want 0", got)
	}
}

// The check runs before any stand-in or fault layer, including layers
// added after it.
func TestModelCheckIsOutermost(t *testing.T) {
	t.Parallel() // rigs of its own
	rig := StartRigT(t)
	answered := false
	rig.Proxy.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Amz-Target") == "AmazonSSM.ListCommands" {
				answered = true
				writeJSON(w, 200, []byte(`{"Commands":[]}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	cfg := rigConfig(t, rig.URL)
	_, err := ssm.NewFromConfig(cfg).ListCommands(context.Background(), &ssm.ListCommandsInput{MaxResults: aws.Int32(0)})
	if err == nil || answered {
		t.Fatalf("a stand-in answered a request AWS refuses (err %v)", err)
	}
	if vs := rig.TakeViolations(); len(vs) != 1 || vs[0].Constraint != "range" {
		t.Fatalf("recorded %v", vs)
	}
}

// A fault proxy a test puts in front of the rig checks with the rig's
// model check: its stand-in answers cannot let a request AWS refuses pass.
func TestFaultProxyInFrontOfRigChecks(t *testing.T) {
	rig := sharedRig(t)
	front, err := NewFaultProxy(rig.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	front.Answer("AmazonSSM.ListCommands", func([]byte) (int, []byte) { return 200, []byte(`{"Commands":[]}`) })
	cfg := rigConfig(t, front.URL)
	if _, err := ssm.NewFromConfig(cfg).ListCommands(context.Background(), &ssm.ListCommandsInput{MaxResults: aws.Int32(50)}); err != nil {
		t.Fatalf("clean request: %v", err)
	}
	if _, err := ssm.NewFromConfig(cfg).ListCommands(context.Background(), &ssm.ListCommandsInput{MaxResults: aws.Int32(51)}); err == nil {
		t.Fatal("the stand-in answered a request AWS refuses")
	}
	if vs := rig.TakeViolations(); len(vs) != 1 || vs[0].Member != "MaxResults" {
		t.Fatalf("recorded %v", vs)
	}
}

// SendCommand's Parameters are checked against the document the rig saw
// created, as SSM does (InvalidParameters); moto checks none of it.
func TestRigChecksDocumentParameters(t *testing.T) {
	rig := sharedRig(t)
	ctx := context.Background()
	client := ssm.NewFromConfig(rigConfig(t, rig.URL))
	content := "schemaVersion: '2.2'\ndescription: test\nparameters:\n  Name:\n    type: String\n    allowedPattern: '^[a-z]{1,8}$'\n  Port:\n    type: String\n    default: '443'\n    allowedPattern: '^[0-9]+$'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand: [echo hi]\n"
	if _, err := client.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("certferry-test"), Content: aws.String(content),
		DocumentFormat: ssmtypes.DocumentFormatYaml, DocumentType: ssmtypes.DocumentTypeCommand}); err != nil {
		t.Fatal(err)
	}
	send := func(params map[string][]string) error {
		_, err := client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-test"), Parameters: params,
			Targets: []ssmtypes.Target{{Key: aws.String("tag:env"), Values: []string{"prod"}}}})
		return err
	}
	if err := send(map[string][]string{"Name": {"web"}}); err != nil {
		t.Fatalf("clean send: %v", err)
	}
	if vs := rig.TakeViolations(); len(vs) != 0 {
		t.Fatalf("clean send recorded %v", vs)
	}
	for _, c := range []struct {
		name   string
		params map[string][]string
		want   string
	}{
		{"pattern", map[string][]string{"Name": {"Web Site"}}, "allowedPattern"},
		{"unknown parameter", map[string][]string{"Name": {"web"}, "Nme": {"x"}}, "not defined"},
		{"required parameter missing", map[string][]string{"Port": {"80"}}, "required parameter Name"},
		{"two values for a String", map[string][]string{"Name": {"a", "b"}}, "one value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := send(c.params)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "InvalidParameters" || !strings.Contains(api.ErrorMessage(), c.want) {
				t.Fatalf("want InvalidParameters naming %q, got %v", c.want, err)
			}
			if vs := rig.TakeViolations(); len(vs) != 1 || !strings.Contains(vs[0].Message, c.want) {
				t.Fatalf("recorded %v", vs)
			}
		})
	}
}

// DynamoDB's documented key and item sizes, which moto does not enforce,
// are checked against the key schema the rig saw created.
func TestRigChecksDynamoDBLimits(t *testing.T) {
	rig := sharedRig(t)
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(rigConfig(t, rig.URL))
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String("certferry"),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: ddbtypes.KeyTypeRange}},
	}); err != nil {
		t.Fatal(err)
	}
	put := func(item map[string]ddbtypes.AttributeValue) error {
		_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("certferry"), Item: item})
		return err
	}
	if err := put(map[string]ddbtypes.AttributeValue{"PK": s(strings.Repeat("p", 2048)), "SK": s(strings.Repeat("s", 1024)), "v": s(strings.Repeat("v", 300000))}); err != nil {
		t.Fatalf("item at the limits: %v", err)
	}
	if vs := rig.TakeViolations(); len(vs) != 0 {
		t.Fatalf("item at the limits recorded %v", vs)
	}
	for _, c := range []struct {
		name, member string
		item         map[string]ddbtypes.AttributeValue
	}{
		{"partition key over 2048 bytes", "Item.PK", map[string]ddbtypes.AttributeValue{"PK": s(strings.Repeat("é", 1025)), "SK": s("META")}},
		{"sort key over 1024 bytes", "Item.SK", map[string]ddbtypes.AttributeValue{"PK": s("CERT#x"), "SK": s(strings.Repeat("s", 1025))}},
		{"item over 400 KB", "Item", map[string]ddbtypes.AttributeValue{"PK": s("CERT#x"), "SK": s("META"), "v": s(strings.Repeat("v", 409600))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := put(c.item); err == nil {
				t.Fatal("accepted")
			}
			if vs := rig.TakeViolations(); len(vs) != 1 || vs[0].Member != c.member {
				t.Fatalf("recorded %v, want one at %s", vs, c.member)
			}
		})
	}
}
