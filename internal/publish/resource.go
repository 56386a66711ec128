package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// Attribute names of the custom resource (Fn::GetAtt), one hash per build.
const (
	AttrSHA256LinuxAmd64   = "Sha256LinuxAmd64"
	AttrSHA256LinuxArm64   = "Sha256LinuxArm64"
	AttrSHA256WindowsAmd64 = "Sha256WindowsAmd64"
	AttrBucket             = "Bucket"
	AttrKeyPrefix          = "KeyPrefix"
)

// attrOf names each platform's hash attribute.
var attrOf = map[Platform]string{
	{"linux", "amd64"}:   AttrSHA256LinuxAmd64,
	{"linux", "arm64"}:   AttrSHA256LinuxArm64,
	{"windows", "amd64"}: AttrSHA256WindowsAmd64,
}

// Resource properties the template sets.
const (
	PropBucket    = "Bucket"
	PropKeyPrefix = "KeyPrefix"
)

type publisher interface {
	Publish(ctx context.Context, bucket, prefix, dir string) (Publication, error)
}

var _ publisher = (*Publisher)(nil)

// Handler answers the InstallerPublication custom resource: Create and
// Update publish the builds the function's package carries (in Dir) and
// return their hashes as attributes; Delete changes nothing (the bucket is
// retained with the stack's other data, and a command sent before may still
// fetch an older build). Whatever happens — an error, a panic, a publish
// that runs out of time — it answers CloudFormation: a custom resource that
// never answers holds the stack until the resource's ServiceTimeout.
type Handler struct {
	pub publisher
	dir string
	// Client sends the answer (default: a client with ResponseTimeout).
	Client *http.Client
	// Reserve is kept from the invocation's deadline for the answer: the
	// publish stops this long before Lambda would end the invocation
	// (default 20s).
	Reserve time.Duration
	// ResponseTimeout bounds each attempt to send the answer (default 10s).
	ResponseTimeout time.Duration
}

// NewHandler returns a Handler publishing the builds in dir.
func NewHandler(pub publisher, dir string) *Handler {
	return &Handler{pub: pub, dir: dir, Reserve: 20 * time.Second, ResponseTimeout: 10 * time.Second}
}

// maxReason bounds the answer's Reason (the whole answer must stay under
// CloudFormation's 4096 bytes).
const maxReason = 1000

// Handle is the Lambda entry point. It returns an error only when the
// answer could not be delivered (Lambda then retries the asynchronous
// invocation, which publishes again and answers again).
func (h *Handler) Handle(ctx context.Context, ev cfn.Event) (err error) {
	resp := cfn.NewResponse(&ev)
	resp.PhysicalResourceID = physicalID(ev)
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-h.Reserve))
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			slog.ErrorContext(ctx, "installer publication panicked", "panic", fmt.Sprint(p))
			resp.Status, resp.Reason, resp.Data = cfn.StatusFailed, "the publisher panicked; see its log", nil
		}
		err = h.answer(ctx, ev.ResponseURL, resp)
	}()
	data, werr := h.do(work, ev)
	if werr != nil && errors.Is(werr, context.DeadlineExceeded) {
		werr = fmt.Errorf("publishing did not finish %s before the function's timeout: %w", h.Reserve, werr)
	}
	if werr != nil {
		slog.ErrorContext(ctx, "installer publication failed", "requestType", ev.RequestType, "error", werr)
		resp.Status, resp.Reason = cfn.StatusFailed, truncate(werr.Error(), maxReason)
		return nil
	}
	resp.Status, resp.Data = cfn.StatusSuccess, data
	return nil
}

func (h *Handler) do(ctx context.Context, ev cfn.Event) (map[string]any, error) {
	switch ev.RequestType {
	case cfn.RequestCreate, cfn.RequestUpdate:
	case cfn.RequestDelete:
		slog.InfoContext(ctx, "installer publication deleted: objects kept (content-addressed; commands in flight may fetch them)",
			"physicalResourceId", ev.PhysicalResourceID)
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown request type %q", ev.RequestType)
	}
	bucket, _ := ev.ResourceProperties[PropBucket].(string)
	prefix, _ := ev.ResourceProperties[PropKeyPrefix].(string)
	if bucket == "" || prefix == "" {
		return nil, errors.New("properties Bucket and KeyPrefix are required")
	}
	pub, err := h.pub.Publish(ctx, bucket, prefix, h.dir)
	if err != nil {
		return nil, err
	}
	data := map[string]any{AttrBucket: pub.Bucket, AttrKeyPrefix: pub.KeyPrefix}
	for _, o := range pub.Objects {
		data[attrOf[o.Platform]] = o.SHA256
		slog.InfoContext(ctx, "installer published", "platform", o.Platform.String(), "key", o.Key, "sha256", o.SHA256, "bytes", o.Size)
	}
	return data, nil
}

// physicalID is stable for a bucket and prefix: an Update keeps the
// resource, and a Delete names the one CloudFormation created.
func physicalID(ev cfn.Event) string {
	if ev.RequestType == cfn.RequestDelete && ev.PhysicalResourceID != "" {
		return ev.PhysicalResourceID
	}
	bucket, _ := ev.ResourceProperties[PropBucket].(string)
	prefix, _ := ev.ResourceProperties[PropKeyPrefix].(string)
	if bucket == "" {
		if ev.PhysicalResourceID != "" {
			return ev.PhysicalResourceID
		}
		return "certferry-installer-" + ev.RequestID
	}
	return "certferry-installer:s3://" + bucket + "/" + prefix
}

// answer PUTs the response to the pre-signed ResponseURL ("Custom resource
// response objects", CloudFormation User Guide: no Content-Type, since the
// URL is signed without one). It tries up to three times, each attempt
// bounded by ResponseTimeout and all of them by the invocation's deadline.
func (h *Handler) answer(ctx context.Context, url string, resp *cfn.Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode custom resource answer: %w", err)
	}
	client := h.Client
	if client == nil {
		client = &http.Client{}
	}
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		actx, cancel := h.attemptContext(ctx)
		last = put(actx, client, url, body)
		cancel()
		if last == nil {
			slog.InfoContext(ctx, "custom resource answered", "status", resp.Status, "physicalResourceId", resp.PhysicalResourceID)
			return nil
		}
		slog.WarnContext(ctx, "custom resource answer not delivered", "attempt", attempt, "error", last)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*time.Second {
			break
		}
	}
	return fmt.Errorf("answer CloudFormation (status %s): %w", resp.Status, last)
}

// attemptContext bounds one attempt: ResponseTimeout, and never past a
// second before the invocation's deadline. It ignores the invocation's
// cancellation otherwise: the answer goes out even after the work timed out.
func (h *Handler) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(h.ResponseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-time.Second).Before(end) {
		end = d.Add(-time.Second)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), end)
}

func put(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(body))
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("response URL answered %s", res.Status)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
