package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// The API verbs run without -api against AWS_ENDPOINT_URL check it first,
// as invoke does: with nothing listening there they say to start moto_server
// at once, instead of the SDK's retries ending in the API's "502 ... retry
// the request" (issue 13: "connection refused → start moto_server at the
// endpoint").
func TestLocalVerbsSayWhatToDoWhenNothingAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("CERTFERRY_TABLE", "certferry-inventory")
	t.Setenv("CERTFERRY_DOCUMENT", "certferry-install")
	t.Setenv("CERTFERRY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:certferry-alerts")
	for _, args := range [][]string{{"status"}, {"get", "shop-web"}, {"delete", "shop-web"}, {"redeploy", "shop-web"}} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, args, &out, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "start moto_server there") {
				t.Fatalf("certferry %v with nothing at %s: %v, want the advice to start moto_server", args, endpoint, err)
			}
			if strings.Contains(err.Error(), "retry the request") {
				t.Fatalf("certferry %v: %v advises a retry that never heals", args, err)
			}
		})
	}
}
