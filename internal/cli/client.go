package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/certferry/certferry/internal/api"
)

// Caller sends one API request and returns the answer's status and body.
type Caller func(ctx context.Context, method, path string, body []byte) (int, []byte, error)

// Handler is the API handler (internal/api.Handler).
type Handler interface {
	Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
}

// HandlerCaller calls the API handler in this process, as API Gateway
// would (the same code the Lambda runs).
func HandlerCaller(h Handler) Caller {
	return func(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
		resp, err := h.Handle(ctx, ProxyRequest(method, path, body))
		if err != nil {
			return 0, nil, &HandlerError{Err: fmt.Errorf("%s %s: handler: %w", method, path, err)}
		}
		return resp.StatusCode, []byte(resp.Body), nil
	}
}

// ProxyRequest is the proxy event API Gateway sends for method and path
// (with its query string) and body.
func ProxyRequest(method, path string, body []byte) events.APIGatewayProxyRequest {
	path, rawQuery, _ := strings.Cut(path, "?")
	req := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Resource: path, Body: string(body)}
	for _, p := range []struct{ prefix, param string }{{"/certificates/", "name"}, {"/nodes/", "instanceId"}} {
		if rest, ok := strings.CutPrefix(path, p.prefix); ok {
			seg, _, _ := strings.Cut(rest, "/")
			if v, err := url.PathUnescape(seg); err == nil {
				req.PathParameters = map[string]string{p.param: v}
			}
			req.Resource = p.prefix + "{" + p.param + "}" + strings.TrimPrefix(rest, seg)
		}
	}
	if q, err := url.ParseQuery(rawQuery); err == nil && len(q) > 0 {
		req.QueryStringParameters = map[string]string{}
		for k := range q {
			req.QueryStringParameters[k] = q.Get(k)
		}
	}
	return req
}

// HTTPCaller calls a deployed stack's API at base (its ApiUrl output),
// signing each request with SigV4 for execute-api in region.
func HTTPCaller(base string, creds aws.CredentialsProvider, region string, client *http.Client) (Caller, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, Usagef("-api must be the stack's ApiUrl output (https://…/v1), not %q", base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	signer := v4.NewSigner()
	return func(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, u.String()+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("AWS credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, c, req, hex.EncodeToString(sum[:]), "execute-api", region, time.Now()); err != nil {
			return 0, nil, fmt.Errorf("sign request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		return resp.StatusCode, out, err
	}, nil
}

// Client is the onboarding API's client.
type Client struct{ Call Caller }

// do sends a request and decodes a 2xx answer into out (when not nil);
// any other answer is an *APIError.
func (c Client) do(ctx context.Context, method, path string, body []byte, out any) ([]byte, error) {
	status, raw, err := c.Call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return raw, NewAPIError(method, path, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return raw, nil
}

// List is GET /certificates.
func (c Client) List(ctx context.Context) ([]api.CertView, error) {
	var out struct {
		Certificates []api.CertView `json:"certificates"`
	}
	_, err := c.do(ctx, http.MethodGet, "/certificates", nil, &out)
	return out.Certificates, err
}

// Get reads every page of GET /certificates/{name} into one.
func (c Client) Get(ctx context.Context, name string) (api.CertPage, error) {
	var all api.CertPage
	next := ""
	for page := 0; ; page++ {
		path := "/certificates/" + url.PathEscape(name)
		if next != "" {
			path += "?next=" + url.QueryEscape(next)
		}
		var p api.CertPage
		if _, err := c.do(ctx, http.MethodGet, path, nil, &p); err != nil {
			return all, err
		}
		if page == 0 {
			all = p
		} else {
			all.Nodes = append(all.Nodes, p.Nodes...)
			all.Deployments = append(all.Deployments, p.Deployments...)
		}
		if p.Next == "" || p.Next == next {
			all.Next = ""
			return all, nil
		}
		next = p.Next
	}
}

// Node reads every page of GET /nodes/{instanceId} into one.
func (c Client) Node(ctx context.Context, instanceID string) (api.NodePage, error) {
	var all api.NodePage
	next := ""
	for page := 0; ; page++ {
		path := "/nodes/" + url.PathEscape(instanceID)
		if next != "" {
			path += "?next=" + url.QueryEscape(next)
		}
		var p api.NodePage
		if _, err := c.do(ctx, http.MethodGet, path, nil, &p); err != nil {
			return all, err
		}
		if page == 0 {
			all = p
		} else {
			all.Certificates = append(all.Certificates, p.Certificates...)
		}
		if p.Next == "" || p.Next == next {
			all.Next = ""
			return all, nil
		}
		next = p.Next
	}
}

// Onboard is POST /certificates with body; it returns the raw answer.
func (c Client) Onboard(ctx context.Context, body []byte) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/certificates", body, nil)
}

// Delete is DELETE /certificates/{name}[?deleteSecret=true].
func (c Client) Delete(ctx context.Context, name string, deleteSecret bool) ([]byte, error) {
	path := "/certificates/" + url.PathEscape(name)
	if deleteSecret {
		path += "?deleteSecret=true"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Redeploy is POST /certificates/{name}/deployments, to every target, or
// with instanceIDs to those nodes only.
func (c Client) Redeploy(ctx context.Context, name string, instanceIDs []string) ([]byte, error) {
	var body []byte
	if len(instanceIDs) > 0 {
		body, _ = json.Marshal(api.RedeployBody{InstanceIDs: instanceIDs})
	}
	return c.do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(name)+"/deployments", body, nil)
}
