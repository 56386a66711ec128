//go:build integration

package api_test

// The body fields of the operator's actions (issue 14) that reach AWS:
// whatever the API accepts for them, AWS's models accept (the same
// model-checking endpoint as awsfields_test.go).

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
	"github.com/certferry/certferry/internal/spec"
)

func lifecycleRows() []routeRow {
	reasons := []any{"", "x", "superseded", "Key-Compromise", " SUPERSEDED ", "SUPERCEDED", "CERTIFICATE_HOLD", "REMOVE_FROM_CRL",
		"SUPERSEDED\x00", "UNSPECIFIED;", strings.Repeat("A", 300), "cessation of operation"}
	for _, v := range acmtypes.RevocationReason("").Values() {
		reasons = append(reasons, string(v))
	}
	arns := []any{}
	for _, v := range variants(testARN, 0, 2100) {
		arns = append(arns, v)
	}
	arns = append(arns, strings.Replace(testARN, "us-east-1", "eu-west-1", 1), strings.ToUpper(testARN), testARN+"/x",
		"arn:aws:acm:us-east-1:123456789012:certificate/ffffffff-ffff-ffff-ffff-ffffffffffff",
		"arn:aws-us-gov-x:acm:us-east-1:999999999999:certificate/00000000-0000-0000-0000-000000000000")
	return []routeRow{
		{field: "POST /certificates/{name}/revocations reason",
			reaches: []string{"acm:RevokeCertificate RevocationReason (enum)"},
			values:  reasons,
			try: func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool {
				r := lifecycle.NormalizeReason(v.(string))
				private := certs.Info{ARN: testARN, Type: "PRIVATE", Status: "ISSUED"}
				public := certs.Info{ARN: testARN, Type: "AMAZON_ISSUED", ExportOption: "ENABLED", Status: "ISSUED"}
				if private.CheckRevocable(r) != nil && public.CheckRevocable(r) != nil {
					return false
				}
				_ = certs.NewActions(acm.NewFromConfig(cfg)).Revoke(ctx, testARN, r)
				return true
			}},
		{field: "POST /certificates/{name}/rebind certificateArn",
			reaches: []string{"acm:DescribeCertificate CertificateArn", "dynamodb:UpdateItem certificateArn (index key ≤ 2048 bytes)",
				"dynamodb:Query certificateArn-index :arn", "acm:RenewCertificate / RevokeCertificate CertificateArn (later actions)"},
			values: arns,
			try: func(ctx context.Context, c *awsChecker, cfg aws.Config, v any) bool {
				arn := v.(string)
				if !certs.ARNPattern.MatchString(arn) || certs.ARNRegion(arn) != "us-east-1" {
					return false
				}
				_, _ = certs.NewClient(acm.NewFromConfig(cfg)).Describe(ctx, arn)
				inv := inventory.NewStore(dynamodb.NewFromConfig(cfg), "certferry")
				_, _ = inv.Rebind(ctx, &inventory.Cert{PK: inventory.CertKey("shop-web"), Spec: spec.Spec{Name: "shop-web", CertificateARN: testARN}, Version: 1}, arn)
				_, _ = inv.NamesByARN(ctx, arn)
				a := certs.NewActions(acm.NewFromConfig(cfg))
				_ = a.Renew(ctx, arn)
				_ = a.Revoke(ctx, arn, certs.ReasonSuperseded)
				return true
			}},
	}
}

func TestLifecycleFieldsReachAWSWithinModel(t *testing.T) {
	checkRouteRows(t, lifecycleRows())
}
