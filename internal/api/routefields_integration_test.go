//go:build integration

package api_test

// The fields of the routes added after onboarding (redeploy to some nodes,
// GET /nodes/{instanceId}, DELETE ?deleteSecret=true) that reach AWS, each
// with a row: whatever the API accepts for them, AWS accepts (checked by
// the same model-checking endpoint as awsfields_test.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// routeRow is one route field and the AWS members it reaches.
type routeRow struct {
	field   string
	reaches []string
	values  []any
	// try runs the API's acceptance of v and, if accepted, every production
	// call v reaches; it reports whether v was accepted.
	try func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool
}

func checkerConfig(c *awsChecker) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(c.srv.URL), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})}
}

func idCandidates() []any {
	out := []any{"i-0123456789abcdef0", "mi-0123456789abcdef0", "i-01234567", "i-0123456789ABCDEF0", "i-0123456789abcdef", "i-"}
	for _, v := range variants("i-0123456789abcdef0", 0, 2100) {
		out = append(out, v)
	}
	return out
}

// deleted answers every DELETE as found, so the handler goes on to the
// secrets.
type deleted struct{ pipeline.Pipeline }

func (deleted) Delete(context.Context, string) (bool, error) { return true, nil }

func routeRows() []routeRow {
	return []routeRow{
		{field: "POST /certificates/{name}/deployments instanceIds[]",
			reaches: []string{"ssm:SendCommand InstanceIds (≤ 50, pattern)", "dynamodb:GetItem Key.SK (NODE#<id>, ≤ 1024 bytes)"},
			values: func() []any {
				out := idCandidates()
				for _, n := range []int{0, 1, 50, 51} {
					ids := make([]any, n)
					for i := range ids {
						ids[i] = fmt.Sprintf("i-%017x", i)
					}
					out = append(out, ids)
				}
				return out
			}(),
			try: func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool {
				list, ok := v.([]any)
				if !ok {
					list = []any{v}
				}
				raw, _ := json.Marshal(map[string]any{"instanceIds": list})
				body, err := api.ParseRedeploy(string(raw), false)
				if err != nil || pipeline.CheckInstanceIDs(body.InstanceIDs) != nil {
					return false
				}
				inv := inventory.NewStore(dynamodb.NewFromConfig(cfg), "certferry")
				for _, id := range body.InstanceIDs {
					_, _ = inv.GetNode(ctx, "shop-web", id)
				}
				sp := spec.Spec{Name: "shop-web", CertificateARN: testARN, Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}
				sp.ApplyDefaults()
				_, _ = fleet.New(ssm.NewFromConfig(cfg), fleet.Options{Document: "certferry-install"}).Send(ctx, fleet.Install{
					Spec: sp, SecretID: "certferry/shop-web", Region: "us-east-1", ServerName: "shop.example.com", Only: body.InstanceIDs,
					ExpectedFingerprint: strings.TrimSuffix(strings.Repeat("AB:", 32), ":"), Serial: "0a", SendID: fleet.NewSendID(),
				})
				return true
			}},
		{field: "GET /nodes/{instanceId}",
			reaches: []string{"dynamodb:Query instanceId-index ExpressionAttributeValues :id (index partition key ≤ 2048 bytes)"},
			values:  idCandidates(),
			try: func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool {
				id, _ := v.(string)
				inv := inventory.NewStore(dynamodb.NewFromConfig(cfg), "certferry")
				h := api.NewHandler(&deleted{}, inv)
				resp, _ := h.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/nodes/{instanceId}", Path: "/nodes/x",
					PathParameters: map[string]string{"instanceId": id}})
				return resp.StatusCode != 400
			}},
		{field: "DELETE /certificates/{name}?deleteSecret=true (name, recoveryWindowDays)",
			reaches: []string{"secretsmanager:DeleteSecret SecretId (1–2048; prefix + name, + /keystore)", "secretsmanager:DeleteSecret RecoveryWindowInDays (7–30)"},
			values: func() []any {
				out := []any{}
				for _, d := range []string{"", "0", "6", "7", "30", "31", "-7", "1e1", " 7", "007", "99999999999999999999"} {
					out = append(out, "shop-web|"+d)
				}
				for _, n := range variants("shop-web", 0, 600) {
					out = append(out, n+"|")
				}
				return out
			}(),
			try: func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool {
				name, days, _ := strings.Cut(v.(string), "|")
				q := map[string]string{"deleteSecret": "true"}
				if days != "" {
					q["recoveryWindowDays"] = days
				}
				h := api.NewHandler(&deleted{}, inventory.NewStore(dynamodb.NewFromConfig(cfg), "certferry")).
					WithSecrets(pipeline.NewSecretRemover(secretsmanager.NewFromConfig(cfg), "certferry/"))
				resp, _ := h.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "DELETE", Resource: "/certificates/{name}",
					Path: "/certificates/x", PathParameters: map[string]string{"name": name}, QueryStringParameters: q})
				return resp.StatusCode != 400
			}},
	}
}

func TestRouteFieldsReachAWSWithinModel(t *testing.T) {
	checkRouteRows(t, routeRows())
}

// checkRouteRows tries each row's candidate values against moto behind the
// AWS model check: no value the API accepts may reach AWS with a value AWS
// refuses, and each row must accept some values and refuse others (or it
// proves little).
func checkRouteRows(t *testing.T, rows []routeRow) {
	checker := newAWSChecker(t)
	cfg := checkerConfig(checker)
	ctx := context.Background()
	for _, row := range rows {
		t.Run(row.field, func(t *testing.T) {
			accepted := 0
			for _, v := range row.values {
				if !row.try(ctx, checker, cfg, v) {
					checker.take()
					continue
				}
				accepted++
				if bad := checker.take(); len(bad) > 0 {
					t.Errorf("the API accepts %s = %s, which AWS refuses:\n  %s", row.field, show(v), strings.Join(bad, "\n  "))
				}
			}
			if accepted < 2 || accepted == len(row.values) {
				t.Errorf("%d of %d candidate values accepted: the row proves little", accepted, len(row.values))
			}
		})
	}
}

// Every field of a route body has a row (RedeployBody grows: add one).
func TestEveryRouteFieldHasARow(t *testing.T) {
	rows := map[string]bool{}
	for _, r := range routeRows() {
		rows[r.field] = true
	}
	rt := reflect.TypeOf(api.RedeployBody{})
	for i := range rt.NumField() {
		name := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if !rows["POST /certificates/{name}/deployments "+name+"[]"] {
			t.Errorf("RedeployBody.%s reaches AWS but has no row in routefields_test.go", name)
		}
	}
}
