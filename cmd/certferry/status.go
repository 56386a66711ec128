package main

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
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
)

// caller sends one API request: to the deployed API (SigV4-signed) or,
// with no URL, to the API handler in this process against the table and
// AWS account of the environment (the same code the Lambda runs).
type caller func(ctx context.Context, method, path string) (int, []byte, error)

func newCaller(ctx context.Context, apiURL string) (caller, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	if apiURL == "" {
		cfg, err := config.Load(os.LookupEnv, app.OnboardRequired...)
		if err != nil {
			return nil, fmt.Errorf("configuration (set CERTFERRY_TABLE and CERTFERRY_DOCUMENT, or pass -api URL): %w", err)
		}
		return handlerCaller(app.Onboard(awsCfg, cfg, app.Options{})), nil
	}
	base, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil || base.Scheme != "https" && base.Scheme != "http" {
		return nil, fmt.Errorf("-api must be the stack's ApiUrl output (https://…/v1)")
	}
	signer := v4.NewSigner()
	return func(ctx context.Context, method, path string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base.String()+path, bytes.NewReader(nil))
		if err != nil {
			return 0, nil, err
		}
		creds, err := awsCfg.Credentials.Retrieve(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("credentials: %w", err)
		}
		empty := sha256.Sum256(nil)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "execute-api", awsCfg.Region, time.Now()); err != nil {
			return 0, nil, fmt.Errorf("sign request: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		return resp.StatusCode, body, err
	}, nil
}

// handlerCaller calls the API handler in this process.
func handlerCaller(h *api.Handler) caller {
	return func(ctx context.Context, method, path string) (int, []byte, error) {
		resp, err := h.Handle(ctx, apiRequest(method, path))
		return resp.StatusCode, []byte(resp.Body), err
	}
}

// apiRequest is the proxy event API Gateway sends for method and path
// (with its query string).
func apiRequest(method, path string) events.APIGatewayProxyRequest {
	path, rawQuery, _ := strings.Cut(path, "?")
	req := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Resource: path}
	if name, ok := strings.CutPrefix(path, "/certificates/"); ok {
		name, _, _ = strings.Cut(name, "/")
		req.PathParameters = map[string]string{"name": name}
		req.Resource = strings.Replace(path, "/"+name, "/{name}", 1)
	}
	if q, err := url.ParseQuery(rawQuery); err == nil && len(q) > 0 {
		req.QueryStringParameters = map[string]string{}
		for k := range q {
			req.QueryStringParameters[k] = q.Get(k)
		}
	}
	return req
}

type certDetail = api.CertPage

// getDetail reads every page of GET /certificates/{name} into one detail.
func getDetail(ctx context.Context, call caller, name string) (certDetail, error) {
	var all certDetail
	next := ""
	for page := 0; ; page++ {
		path := "/certificates/" + url.PathEscape(name)
		if next != "" {
			path += "?next=" + url.QueryEscape(next)
		}
		var d certDetail
		if err := getJSON(ctx, call, path, &d); err != nil {
			return all, err
		}
		if page == 0 {
			all = d
		} else {
			all.Nodes = append(all.Nodes, d.Nodes...)
			all.Deployments = append(all.Deployments, d.Deployments...)
		}
		if d.Next == "" || d.Next == next {
			all.Next = ""
			return all, nil
		}
		next = d.Next
	}
}

func getJSON(ctx context.Context, call caller, path string, out any) error {
	status, body, err := call(ctx, "GET", path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

// status prints one line per name (or the nodes of one name).
func status(ctx context.Context, call caller, name string, w io.Writer, now time.Time) error {
	var names []string
	if name != "" {
		names = []string{name}
	} else {
		var list struct {
			Certificates []api.CertView `json:"certificates"`
		}
		if err := getJSON(ctx, call, "/certificates", &list); err != nil {
			return err
		}
		for _, c := range list.Certificates {
			names = append(names, c.Name)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERIAL\tEXPIRES\tINSTALLED\tPENDING\tFAILED\tLAST DEPLOYMENT")
	var detail *certDetail
	for _, n := range names {
		d, err := getDetail(ctx, call, n)
		if err != nil {
			return err
		}
		detail = &d
		counts := map[string]int{}
		for _, nd := range d.Nodes {
			switch {
			case nd.State == inventory.NodeInstalled && nd.Serial == d.Serial:
				counts["installed"]++
			case nd.State == inventory.NodePending || nd.State == inventory.NodeInstalled:
				counts["pending"]++ // installed on an older serial: the new one is on its way
			default:
				counts["failed"]++
			}
		}
		expires := "-"
		if t, err := time.Parse(time.RFC3339, d.NotAfter); err == nil {
			expires = fmt.Sprintf("%s (%dd)", t.Format("2006-01-02"), certs.DaysLeft(t, now))
		}
		last := "-"
		if len(d.Deployments) > 0 {
			l := d.Deployments[len(d.Deployments)-1]
			last = fmt.Sprintf("%s %s (%s)", inventory.FormatTime(l.CreatedAt), l.Outcome, l.Trigger)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", d.Name, short(d.Serial), expires, counts["installed"], counts["pending"], counts["failed"], last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if name == "" || detail == nil {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSERIAL\tUPDATED\tERROR")
	for _, nd := range detail.Nodes {
		state := nd.State
		if nd.Unverified {
			state += " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", nd.InstanceID, state, short(nd.Serial), inventory.FormatTime(nd.UpdatedAt), nd.Error)
	}
	return tw.Flush()
}

// redeploy asks for a deployment of name to every target now.
func redeploy(ctx context.Context, call caller, name string, w io.Writer) error {
	status, body, err := call(ctx, "POST", "/certificates/"+url.PathEscape(name)+"/deployments")
	if err != nil {
		return err
	}
	if status != http.StatusAccepted {
		return fmt.Errorf("redeploy %s: %d %s", name, status, strings.TrimSpace(string(body)))
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(body)))
	return err
}

func short(serial string) string {
	if len(serial) > 16 {
		return serial[:16] + "…"
	}
	if serial == "" {
		return "-"
	}
	return serial
}
