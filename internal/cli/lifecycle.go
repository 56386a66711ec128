package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/api"
)

// The operator's actions (issue 14): rotate, approve, rebind, revoke, and
// the audit trail they leave.

// Rotate is POST /certificates/{name}/renewals.
func (c Client) Rotate(ctx context.Context, name string) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(name)+"/renewals", nil, nil)
}

// Approve is POST /certificates/{name}/approvals.
func (c Client) Approve(ctx context.Context, name string) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(name)+"/approvals", nil, nil)
}

// Rebind is POST /certificates/{name}/rebind {"certificateArn"}.
func (c Client) Rebind(ctx context.Context, name, arn string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"certificateArn": arn})
	return c.do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(name)+"/rebind", body, nil)
}

// Revoke is POST /certificates/{name}/revocations {"reason"}.
func (c Client) Revoke(ctx context.Context, name, reason string) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"reason": reason})
	return c.do(ctx, http.MethodPost, "/certificates/"+url.PathEscape(name)+"/revocations", body, nil)
}

// Audit is GET /certificates/{name}/audit?limit=.
func (c Client) Audit(ctx context.Context, name string, limit int) (api.AuditView, error) {
	var out api.AuditView
	_, err := c.do(ctx, http.MethodGet, "/certificates/"+url.PathEscape(name)+"/audit?limit="+strconv.Itoa(limit), nil, &out)
	return out, err
}

// oneName parses a verb's arguments that take exactly one name.
func oneName(verb string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", Usagef("certferry %s takes one name (see certferry %s --help)", verb, verb)
	}
	return pos[0], nil
}

// RunRotate is `certferry rotate NAME`.
func RunRotate(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("rotate")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("rotate", pos)
	if err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Rotate(ctx, name)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunApprove is `certferry approve NAME`.
func RunApprove(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("approve")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("approve", pos)
	if err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Approve(ctx, name)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunRebind is `certferry rebind NAME --arn ARN`.
func RunRebind(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("rebind")
	arn := fs.String("arn", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("rebind", pos)
	if err != nil {
		return err
	}
	if *arn == "" {
		return Usagef("certferry rebind needs --arn ARN: the certificate to move %s to", name)
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Rebind(ctx, name, *arn)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// ErrNotConfirmed is a revocation the operator did not confirm.
type ErrNotConfirmed struct{ Name string }

func (e *ErrNotConfirmed) Error() string {
	return fmt.Sprintf("revocation of %s not confirmed; nothing was revoked", e.Name)
}

// RunRevoke is `certferry revoke NAME --reason REASON [--yes]`. Without
// --yes it asks the operator to type the name back, on a terminal only:
// without one (a script, a pipe) it refuses unless --yes says the caller
// means it.
func RunRevoke(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("revoke")
	reason := fs.String("reason", "", "")
	yes := fs.Bool("yes", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("revoke", pos)
	if err != nil {
		return err
	}
	if *reason == "" {
		return Usagef("certferry revoke needs --reason REASON: for an exportable public certificate UNSPECIFIED, AFFILIATION_CHANGED, SUPERSEDED or CESSATION_OF_OPERATION; a private one also takes KEY_COMPROMISE, CA_COMPROMISE, PRIVILEGE_WITHDRAWN, A_A_COMPROMISE")
	}
	if !*yes && (env.Interactive == nil || !env.Interactive()) {
		return Usagef("certferry revoke asks you to confirm on a terminal, and none is attached; in a script pass --yes")
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	if !*yes {
		p, err := c.Get(ctx, name)
		if err != nil {
			return err
		}
		prompt := env.Stderr
		if prompt == nil {
			prompt = env.Stdout
		}
		fmt.Fprintf(prompt, "Revoking is permanent. ACM revokes %s (%s, serial %s) for every name bound to it;\n"+
			"its nodes keep serving it until you rebind them to a replacement.\nType the name (%s) to revoke it with reason %s: ",
			p.CertificateARN, dash(p.DomainName), dash(p.Serial), name, strings.ToUpper(*reason))
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read confirmation: %w", err)
		}
		if strings.TrimSpace(line) != name {
			return &ErrNotConfirmed{Name: name}
		}
	}
	raw, err := c.Revoke(ctx, name, *reason)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunAudit is `certferry audit NAME [--limit N] [-o table|json]`.
func RunAudit(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("audit")
	out := fs.String("o", OutputTable, "")
	limit := fs.Int("limit", api.DefaultAuditLimit, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	name, err := oneName("audit", pos)
	if err != nil {
		return err
	}
	if err := CheckOutput(*out); err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	a, err := c.Audit(ctx, name, *limit)
	if err != nil {
		return err
	}
	if *out == OutputJSON {
		return PrintJSON(env.Stdout, a)
	}
	if len(a.Entries) == 0 {
		_, err := fmt.Fprintf(env.Stdout, "no action recorded for %s\n", name)
		return err
	}
	tw := table(env.Stdout)
	fmt.Fprintln(tw, "TIME\tACTION\tBY\tDETAIL")
	for _, e := range a.Entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Action, e.By, dash(e.Detail))
	}
	return tw.Flush()
}

// atRisk prints one line per name marked at risk (its certificate was
// revoked) and what to do.
func atRisk(w io.Writer, pages []api.CertPage) {
	for _, p := range pages {
		if r := p.Revoked; r != nil {
			fmt.Fprintf(w, "AT RISK: %s: certificate %s revoked (%s) at %s by %s; request a replacement, then certferry rebind %s --arn NEW_ARN\n",
				p.Name, r.CertificateARN, dash(r.Reason), r.At.UTC().Format(time.RFC3339), dash(r.By), p.Name)
		}
	}
}
