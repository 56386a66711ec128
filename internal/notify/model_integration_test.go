//go:build integration

package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// TestPublishWithinSNSModel publishes alerts through the real SNS client
// to an endpoint that checks each request against SNS's API model and the
// constraints its Publish page documents (Subject less than 100
// characters, no control characters; Message at most 256 KB).
func TestPublishWithinSNSModel(t *testing.T) {
	var mu sync.Mutex
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, vs := awsmodel.Check(r, body)
		mu.Lock()
		for _, v := range vs {
			bad = append(bad, v.String())
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>`)
	}))
	defer srv.Close()
	client := sns.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})})
	p := NewPublisher(client, "arn:aws:sns:us-east-1:123456789012:certferry-alerts")
	tests := []struct {
		name  string
		title string
	}{
		{"short", "certificate expires in 10 days"},
		{"99 characters with the prefix", strings.Repeat("t", 99-len("certferry: "))},
		{"100 characters with the prefix", strings.Repeat("t", 100-len("certferry: "))},
		{"long", strings.Repeat("shop-web, ", 30)},
		{"control characters and non-ASCII", "line\nbreak\ttab é 中"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Alert{Kind: "expired", Title: tt.title, CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"}
			if _, err := p.Publish(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Errorf("SNS would refuse the alert: %v", bad)
				bad = nil
			}
		})
	}
}
