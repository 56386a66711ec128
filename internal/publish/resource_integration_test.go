//go:build integration

package publish_test

// The custom resource on CloudFormation-shaped requests (events/
// publish-installer-*.json) against moto's S3, with the ResponseURL served
// by an httptest server. moto_server is required: the tests fail without it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/publish"
	"github.com/certferry/certferry/internal/testkit"
)

var moto *motoserver.Server

func TestMain(m *testing.M) {
	// moto behind the AWS model check: the publisher's PutObject requests
	// are held to what S3 accepts.
	rig, err := testkit.StartRig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "publish tests need moto_server and botocore's models:", err)
		os.Exit(1)
	}
	moto = rig.Moto
	os.Exit(rig.Finish(m.Run()))
}

const bucket = "certferry-installerbucket-1a2b3c4d5e6f" // as in the events/ fixtures

// newS3 resets moto and creates the installer bucket.
func newS3(t *testing.T) *s3.Client {
	t.Helper()
	ctx := context.Background()
	if err := moto.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithBaseEndpoint(moto.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	)
	if err != nil {
		t.Fatal(err)
	}
	api := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return api
}

// builds writes three stand-in builds into a fresh package directory and
// returns it with each build's content.
func builds(t *testing.T, generation string) (string, map[publish.Platform][]byte) {
	t.Helper()
	dir := t.TempDir()
	content := map[publish.Platform][]byte{}
	for _, p := range publish.Platforms {
		b := []byte("certferry-node " + p.String() + " build " + generation + "\n" + strings.Repeat("x", 1000))
		if err := os.WriteFile(filepath.Join(dir, p.PackageFile()), b, 0o755); err != nil {
			t.Fatal(err)
		}
		content[p] = b
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("bootstrap"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, content
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// cfnEndpoint stands in for CloudFormation's pre-signed response URL: it
// records every answer. fail makes the first n PUTs answer 500.
type cfnEndpoint struct {
	*httptest.Server
	mu      sync.Mutex
	answers []cfn.Response
	headers []http.Header
	fail    int
}

func newEndpoint(t *testing.T) *cfnEndpoint {
	e := &cfnEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if r.Method != http.MethodPut {
			t.Errorf("answer sent with %s, want PUT", r.Method)
		}
		body, _ := io.ReadAll(r.Body)
		if e.fail > 0 {
			e.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		// "Custom resource response objects": at most 4096 bytes.
		if len(body) > 4096 {
			t.Errorf("answer of %d bytes, CloudFormation takes at most 4096", len(body))
		}
		var resp cfn.Response
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Errorf("answer is not JSON: %q", body)
		}
		e.answers = append(e.answers, resp)
		e.headers = append(e.headers, r.Header.Clone())
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *cfnEndpoint) only(t *testing.T) (cfn.Response, http.Header) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.answers) != 1 {
		t.Fatalf("%d answers, want exactly 1", len(e.answers))
	}
	return e.answers[0], e.headers[0]
}

// event loads a fixture and points its ResponseURL at the endpoint (the
// pre-signed URL's path and query kept).
func event(t *testing.T, name string, e *cfnEndpoint) cfn.Event {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev cfn.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.ResponseURL = e.URL + ev.ResponseURL[strings.Index(ev.ResponseURL, ".com/")+4:]
	return ev
}

// objects lists the bucket: key -> content.
func objects(t *testing.T, api *s3.Client) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	list, err := api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		g, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(g.Body)
		g.Body.Close()
		out[aws.ToString(o.Key)] = b
	}
	return out
}

// deadlineCtx is an invocation context with Lambda's deadline.
func deadlineCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateUpdateDelete(t *testing.T) {
	api := newS3(t)
	ctx := deadlineCtx(t, 2*time.Minute)

	// Create: the three builds go to installer/<sha256>/certferry-node[.exe],
	// their hashes come back as attributes.
	dir1, gen1 := builds(t, "1")
	e := newEndpoint(t)
	if err := publish.NewHandler(publish.NewPublisher(api), dir1).Handle(ctx, event(t, "publish-installer-create.json", e)); err != nil {
		t.Fatal(err)
	}
	resp, hdr := e.only(t)
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("Create answered %s: %s", resp.Status, resp.Reason)
	}
	if ct := hdr.Get("Content-Type"); ct != "" {
		t.Errorf("answer sent with Content-Type %q; the pre-signed URL is signed without one", ct)
	}
	if resp.RequestID != "a1b2c3d4-0000-0000-0000-000000000001" || resp.LogicalResourceID != "InstallerPublication" ||
		!strings.HasPrefix(resp.StackID, "arn:aws:cloudformation:") {
		t.Errorf("answer does not echo the request: %+v", resp)
	}
	physical := "certferry-installer:s3://" + bucket + "/installer/"
	if resp.PhysicalResourceID != physical {
		t.Errorf("PhysicalResourceId %q, want %q", resp.PhysicalResourceID, physical)
	}
	want1 := map[string][]byte{}
	for p, b := range gen1 {
		sha := hexSHA(b)
		if resp.Data[publish.AttrOf[p]] != sha {
			t.Errorf("attribute %s = %v, want %s", publish.AttrOf[p], resp.Data[publish.AttrOf[p]], sha)
		}
		want1["installer/"+sha+"/"+p.FileName()] = b
	}
	if resp.Data[publish.AttrBucket] != bucket || resp.Data[publish.AttrKeyPrefix] != "installer/" {
		t.Errorf("attributes %v", resp.Data)
	}
	got := objects(t, api)
	if len(got) != 3 {
		t.Fatalf("bucket holds %d objects, want 3: %v", len(got), keys(got))
	}
	for k, b := range want1 {
		if !bytes.Equal(got[k], b) {
			t.Errorf("object %s missing or different", k)
		}
	}
	if _, ok := got["installer/"+hexSHA(gen1[publish.Platform{"windows", "amd64"}])+"/certferry-node.exe"]; !ok {
		t.Error("the Windows build is not named certferry-node.exe")
	}
	head, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(firstKey(want1))})
	if err != nil {
		t.Fatal(err)
	}
	created := aws.ToTime(head.LastModified)

	// Update with new builds (a new package): new objects, the old ones kept
	// for commands still in flight.
	dir2, gen2 := builds(t, "2")
	e = newEndpoint(t)
	if err := publish.NewHandler(publish.NewPublisher(api), dir2).Handle(ctx, event(t, "publish-installer-update.json", e)); err != nil {
		t.Fatal(err)
	}
	resp, _ = e.only(t)
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != physical {
		t.Fatalf("Update answered %s %q: %s", resp.Status, resp.PhysicalResourceID, resp.Reason)
	}
	for p, b := range gen2 {
		if resp.Data[publish.AttrOf[p]] != hexSHA(b) {
			t.Errorf("Update attribute %s = %v, want the new build's hash", publish.AttrOf[p], resp.Data[publish.AttrOf[p]])
		}
	}
	if got := objects(t, api); len(got) != 6 {
		t.Fatalf("after Update the bucket holds %d objects, want 6 (old builds kept): %v", len(got), keys(got))
	}

	// Update again with the first package (a rollback): the objects are
	// there already and are not rewritten.
	time.Sleep(1100 * time.Millisecond) // S3 LastModified has second resolution
	e = newEndpoint(t)
	if err := publish.NewHandler(publish.NewPublisher(api), dir1).Handle(ctx, event(t, "publish-installer-update.json", e)); err != nil {
		t.Fatal(err)
	}
	if resp, _ = e.only(t); resp.Status != cfn.StatusSuccess || resp.Data[publish.AttrSHA256LinuxAmd64] != hexSHA(gen1[publish.Platform{"linux", "amd64"}]) {
		t.Fatalf("rollback Update answered %s %v: %s", resp.Status, resp.Data, resp.Reason)
	}
	head, err = api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(firstKey(want1))})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToTime(head.LastModified).Equal(created) {
		t.Error("an existing content-addressed object was rewritten")
	}

	// Delete: SUCCESS with the same physical id, every object kept.
	e = newEndpoint(t)
	if err := publish.NewHandler(publish.NewPublisher(api), dir2).Handle(ctx, event(t, "publish-installer-delete.json", e)); err != nil {
		t.Fatal(err)
	}
	if resp, _ = e.only(t); resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != physical {
		t.Fatalf("Delete answered %s %q: %s", resp.Status, resp.PhysicalResourceID, resp.Reason)
	}
	if got := objects(t, api); len(got) != 6 {
		t.Fatalf("after Delete the bucket holds %d objects, want all 6 kept", len(got))
	}
}

// Failures still answer, FAILED with a reason, and leave no partial set
// behind as the resource's result.
func TestFailuresAnswerFailed(t *testing.T) {
	api := newS3(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, ev *cfn.Event) string // returns the package dir
		pub     publisher
		reason  string
		noWrite bool
	}{
		{
			name: "a build missing from the package",
			setup: func(t *testing.T, _ *cfn.Event) string {
				dir, _ := builds(t, "1")
				os.Remove(filepath.Join(dir, "certferry-node-linux-arm64"))
				return dir
			},
			reason: "linux/arm64", noWrite: true,
		},
		{
			name: "an empty build",
			setup: func(t *testing.T, _ *cfn.Event) string {
				dir, _ := builds(t, "1")
				os.WriteFile(filepath.Join(dir, "certferry-node-linux-amd64"), nil, 0o755)
				return dir
			},
			reason: "is empty", noWrite: true,
		},
		{
			name: "no such bucket",
			setup: func(t *testing.T, ev *cfn.Event) string {
				ev.ResourceProperties[publish.PropBucket] = "certferry-no-such-bucket"
				dir, _ := builds(t, "1")
				return dir
			},
			reason: "NoSuchBucket",
		},
		{
			name: "a bad key prefix",
			setup: func(t *testing.T, ev *cfn.Event) string {
				ev.ResourceProperties[publish.PropKeyPrefix] = "../"
				dir, _ := builds(t, "1")
				return dir
			},
			reason: "key prefix", noWrite: true,
		},
		{
			name: "no bucket property",
			setup: func(t *testing.T, ev *cfn.Event) string {
				delete(ev.ResourceProperties, publish.PropBucket)
				dir, _ := builds(t, "1")
				return dir
			},
			reason: "Bucket and KeyPrefix are required", noWrite: true,
		},
		{
			name:   "the publisher panics",
			setup:  func(t *testing.T, _ *cfn.Event) string { return t.TempDir() },
			pub:    panicking{},
			reason: "panicked",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := moto.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			api = newS3(t)
			e := newEndpoint(t)
			ev := event(t, "publish-installer-create.json", e)
			dir := tc.setup(t, &ev)
			var pub publisher = publish.NewPublisher(api)
			if tc.pub != nil {
				pub = tc.pub
			}
			if err := publish.NewHandler(pub, dir).Handle(deadlineCtx(t, time.Minute), ev); err != nil {
				t.Fatalf("Handle() = %v; the answer was delivered, so no error", err)
			}
			resp, _ := e.only(t)
			if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, tc.reason) {
				t.Fatalf("answered %s %q, want FAILED mentioning %q", resp.Status, resp.Reason, tc.reason)
			}
			if resp.PhysicalResourceID == "" || len(resp.Data) != 0 {
				t.Errorf("failed answer: physical id %q, data %v", resp.PhysicalResourceID, resp.Data)
			}
			if tc.noWrite {
				if got := objects(t, api); len(got) != 0 {
					t.Errorf("a refused publication wrote %v", keys(got))
				}
			}
		})
	}
}

type panicking struct{}

func (panicking) Publish(context.Context, string, string, string) (publish.Publication, error) {
	panic("boom")
}

// stalling publishes until its context ends, like an S3 call that hangs.
type stalling struct{}

func (stalling) Publish(ctx context.Context, _, _, _ string) (publish.Publication, error) {
	<-ctx.Done()
	return publish.Publication{}, fmt.Errorf("put installer: %w", ctx.Err())
}

// A publish that would outlast the invocation is cut short so that the
// answer still goes out before Lambda's deadline.
func TestStalledPublishStillAnswers(t *testing.T) {
	e := newEndpoint(t)
	ev := event(t, "publish-installer-create.json", e)
	h := publish.NewHandler(stalling{}, t.TempDir())
	h.Reserve = 2 * time.Second
	ctx := deadlineCtx(t, 4*time.Second)
	if err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	resp, _ := e.only(t)
	if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "deadline") {
		t.Fatalf("answered %s %q, want FAILED naming the deadline", resp.Status, resp.Reason)
	}
	if ctx.Err() != nil {
		t.Fatal("the answer went out after the invocation's deadline")
	}
}

// An answer the response URL refuses is retried; one never delivered is
// Handle's error (Lambda then retries the whole invocation).
func TestAnswerDelivery(t *testing.T) {
	api := newS3(t)
	dir, _ := builds(t, "1")
	e := newEndpoint(t)
	e.fail = 2
	if err := publish.NewHandler(publish.NewPublisher(api), dir).Handle(deadlineCtx(t, time.Minute), event(t, "publish-installer-create.json", e)); err != nil {
		t.Fatalf("Handle() after two refused attempts = %v", err)
	}
	if resp, _ := e.only(t); resp.Status != cfn.StatusSuccess {
		t.Fatalf("answered %s", resp.Status)
	}
	e = newEndpoint(t)
	e.fail = 100
	err := publish.NewHandler(publish.NewPublisher(api), dir).Handle(deadlineCtx(t, time.Minute), event(t, "publish-installer-delete.json", e))
	if err == nil || !strings.Contains(err.Error(), "answer CloudFormation") {
		t.Fatalf("Handle() with an unreachable response URL = %v, want an error", err)
	}
	// A response URL that never answers: each attempt is bounded.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	h := publish.NewHandler(publish.NewPublisher(api), dir)
	h.ResponseTimeout = 200 * time.Millisecond
	ev := event(t, "publish-installer-delete.json", e)
	ev.ResponseURL = hang.URL + "/answer"
	err = h.Handle(deadlineCtx(t, time.Minute), ev)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle() with a hanging response URL = %v, want a deadline error", err)
	}
}

func TestKeyLayout(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for p, want := range map[publish.Platform]string{
		{"linux", "amd64"}:   "installer/" + sha + "/certferry-node",
		{"linux", "arm64"}:   "installer/" + sha + "/certferry-node",
		{"windows", "amd64"}: "installer/" + sha + "/certferry-node.exe",
	} {
		if got := publish.Key("installer/", sha, p); got != want {
			t.Errorf("publish.Key(%s) = %q, want %q", p, got, want)
		}
	}
	if len(publish.Platforms) != 3 || len(publish.AttrOf) != 3 {
		t.Fatal("every published platform needs an attribute")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func firstKey(m map[string][]byte) string {
	for k := range m {
		return k
	}
	return ""
}

// publisher is the handler's dependency (the package's own interface,
// restated for this external test).
type publisher interface {
	Publish(ctx context.Context, bucket, prefix, dir string) (publish.Publication, error)
}
