package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// sigv4Verify checks a request's Authorization header the way API
// Gateway's AWS_IAM authorizer does, written from "Create a signed AWS API
// request" (IAM User Guide, Signature Version 4) and not from the SDK: the
// canonical request (method, the URI-encoded path, the query sorted by
// encoded name with RFC 3986 encoding, the signed headers in lower case,
// the hex SHA-256 of the body), the string to sign for
// <date>/<region>/execute-api/aws4_request, and the derived key. It
// answers "" when the signature holds.
func sigv4Verify(r *http.Request, body []byte, secret, region string) string {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "no AWS4-HMAC-SHA256 Authorization"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo), ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[2] != region || cred[3] != "execute-api" || cred[4] != "aws4_request" {
		return "credential scope " + fields["Credential"]
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(amzDate, cred[1]) {
		return "X-Amz-Date " + amzDate + " outside the scope's date"
	}
	enc := func(s string) string { // RFC 3986 unreserved kept, all else %XX
		var b strings.Builder
		for _, c := range []byte(s) {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	var segs []string
	for _, s := range strings.Split(r.URL.EscapedPath(), "/") {
		segs = append(segs, enc(s)) // non-S3: each segment encoded again
	}
	var pairs []string
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			pairs = append(pairs, enc(k)+"="+enc(v))
		}
	}
	sort.Strings(pairs)
	signed := strings.Split(fields["SignedHeaders"], ";")
	var canonHeaders strings.Builder
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.TrimSpace(v))
	}
	for _, must := range []string{"host", "x-amz-date"} {
		if !strings.Contains(";"+fields["SignedHeaders"]+";", ";"+must+";") {
			return "unsigned header " + must
		}
	}
	if r.Header.Get("X-Amz-Security-Token") != "" && !strings.Contains(fields["SignedHeaders"], "x-amz-security-token") {
		return "session token sent but not signed"
	}
	sum := sha256.Sum256(body)
	canon := strings.Join([]string{r.Method, strings.Join(segs, "/"), strings.Join(pairs, "&"), canonHeaders.String(),
		fields["SignedHeaders"], hex.EncodeToString(sum[:])}, "\n")
	ch := sha256.Sum256([]byte(canon))
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, strings.Join(cred[1:], "/"), hex.EncodeToString(ch[:])}, "\n")
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+secret), cred[1]), region), "execute-api"), "aws4_request")
	if want := hex.EncodeToString(mac(k, sts)); want != fields["Signature"] {
		return "signature mismatch; canonical request:\n" + canon
	}
	return ""
}

// Every verb's request, sent with -api, carries a SigV4 signature API
// Gateway accepts: query strings (deleteSecret, paging tokens with
// characters that need encoding), bodies and session tokens included.
func TestHTTPCallerSignsAsAPIGatewayChecks(t *testing.T) {
	const secret, region = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "eu-west-1"
	var problems []string
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		if p := sigv4Verify(r, body, secret, region); p != "" {
			problems = append(problems, r.Method+" "+r.URL.RequestURI()+": "+p)
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"The request signature we calculated does not match the signature you provided."}`))
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/nodes/") && r.URL.Query().Get("next") == "":
			_, _ = w.Write([]byte(`{"instanceId":"i-0000000000000001a","certificates":[],"next":"a+b/c=="}`))
		case strings.HasPrefix(r.URL.Path, "/v1/nodes/"):
			_, _ = w.Write([]byte(`{"instanceId":"i-0000000000000001a","certificates":[]}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	for _, token := range []string{"", "FwoGZXIvYXdzEXAMPLE+/=token"} {
		t.Run(fmt.Sprintf("session token %v", token != ""), func(t *testing.T) {
			problems, seen = nil, nil
			creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret, SessionToken: token, CanExpire: true, Expires: time.Now().Add(time.Hour)}, nil
			})
			call, err := HTTPCaller(srv.URL+"/v1", creds, region, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, ctx := Client{Call: call}, context.Background()
			if _, err := c.Delete(ctx, "shop-web", true); err != nil {
				t.Error(err)
			}
			if _, err := c.Redeploy(ctx, "shop-web", []string{"i-0000000000000001a", "mi-0123456789abcdef0"}); err != nil {
				t.Error(err)
			}
			if _, err := c.Onboard(ctx, []byte(`{"name":"shop-web","linux":{"serverName":"é.example"}}`)); err != nil {
				t.Error(err)
			}
			if _, err := c.Node(ctx, "i-0000000000000001a"); err != nil {
				t.Error(err)
			}
			if _, err := c.List(ctx); err != nil {
				t.Error(err)
			}
			for _, p := range problems {
				t.Error(p)
			}
			if len(seen) != 6 || seen[4] != "GET /v1/nodes/i-0000000000000001a?next="+url.QueryEscape("a+b/c==") {
				t.Errorf("requests %q", seen)
			}
		})
	}
}
