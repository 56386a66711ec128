// Command certferry is the operator and local-development CLI. Run
// `certferry help` for the commands and `certferry <command> --help` for
// one command's usage; the README's "CLI" section says the same with
// examples and the exit codes.
//
// Every command honours AWS_ENDPOINT_URL, AWS_REGION and the CERTFERRY_*
// variables.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/samtemplate"
)

// version and commit are set at build time by the Makefile
// (-ldflags "-X main.version=… -X main.commit=…"); without them the commit
// comes from the build's VCS stamp (go build in a git checkout).
var (
	version = "dev"
	commit  = ""
)

func syncTemplate(templatePath, docPath string) error {
	tmpl, err := os.ReadFile(templatePath)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	out, err := samtemplate.SyncDocument(tmpl, doc)
	if err != nil {
		return err
	}
	return os.WriteFile(templatePath, out, 0o644)
}

// apiFlags is the note every API verb's usage ends with.
const apiFlags = `
  -api URL   the deployed stack's ApiUrl output; requests are SigV4-signed with
             your AWS credentials (execute-api:Invoke). Without -api the API
             handler runs here against CERTFERRY_TABLE / CERTFERRY_DOCUMENT with
             your AWS credentials (or AWS_ENDPOINT_URL, e.g. moto after
             'certferry local up').
Exit codes: 0 ok, 1 local failure, 2 usage, 3 the API refused (4xx), 4 the API
or AWS failed (5xx).
`

// regionsUsage is status's usage across accounts and regions.
const regionsUsage = `
Across accounts and regions (README "Across accounts and regions"):
usage: certferry status --regions R,R… [--stack-name NAME] [--role-arn ARN --accounts A,A… [--external-id ID]] [-o table|json] [NAME]

One table of every account and region, ACCOUNT and REGION first; each
region's table is its stack's InventoryTableName output (DescribeStacks), or
CERTFERRY_TABLE in every region when it is set and --stack-name is not given.
  --regions R,R…       region codes (e.g. us-east-1,eu-west-1), at most 40
  --stack-name NAME    the certferry stack in each region (default certferry)
  --role-arn ARN       role assumed in each account (session certferry-status,
                       15 minutes): arn:aws:iam::{account}:role/NAME with
                       --accounts, or one account's role ARN; without it, your
                       own credentials and account
  --accounts A,A…      12-digit account ids, at most 200 (needs --role-arn)
  --external-id ID     the external id the role's trust policy asks for
An account or region that fails (role refused, no stack, throttled) has a row
saying what failed and how to fix it; the others are still shown. Exit codes:
0 ok, 1 some failed here (credentials, network), 2 usage, 4 AWS refused or
failed some.
`

// command is one subcommand: its usage (printed by --help) and what it does.
type command struct{ name, summary, usage string }

// commands lists every subcommand in the order `certferry help` shows them.
func commands() []command {
	return []command{
		{"onboard", "bind a name to an ACM certificate and deploy it to its targets", `usage: certferry onboard --name NAME --arn ARN (--target KEY=VALUE[,VALUE…] … | --instance ID …) [options] [-api URL]

Bind NAME to an ACM certificate and deploy it now (POST /certificates). Prints
the answer: name, certificateArn, deploymentId, commandId, serial, notAfter.

  --name NAME            the name (^[a-z0-9][a-z0-9-]{0,62}$); the secret is certferry/NAME
  --arn ARN              the ACM certificate (PRIVATE, or public requested with export enabled)
  --target KEY=VALUES    SSM target: tag:env=prod, tag:role=web,api, tag-key=certferry (repeatable, up to 5)
  --instance ID          target these instances instead (i-… or mi-…; repeatable or comma-separated)
  --cert-path PATH       certificate file (default /etc/ssl/certs/NAME.pem)
  --key-path PATH        private key file (default /etc/ssl/private/NAME.key)
  --chain-path PATH      chain file (with --format split)
  --keystore-path PATH   keystore file (with --format pkcs12 or jks)
  --format F             pem (default), split, combined, pkcs12, jks
  --owner USER           --group GROUP   owner and group of the files
  --cert-mode MODE       --key-mode MODE  file modes (e.g. 0644, 0600)
  --reload SERVICE       service to reload after install (e.g. nginx); none by default
  --verify-port N        port of the TLS check after install (default 443)
  --verify-address ADDR  address of the check (default 127.0.0.1)
  --server-name HOST     SNI name of the check (default: the certificate's domain)
  --starttls PROTO       smtp, imap or pop3 for the check
  --windows-store STORE  --iis-site SITE  Windows certificate store and IIS site
Rollout and lifecycle options (README "Rollout and lifecycle options"; none given: one
command to every target, renewals go at once):
  --waves W,W,…          cumulative waves, node counts or shares, the last 100% (e.g. 1,25%,100%)
  --pause-minutes N      pause between waves, 0–1440 (default 0)
  --stop-alarm NAME      CloudWatch alarm that stops the command (SSM AlarmConfiguration)
  --window "DAYS HH:MM-HH:MM ZONE"  renewal window, e.g. "Sat,Sun 02:00-05:00 Europe/Berlin" (repeatable, up to 7)
  --safety-margin-days N renewals go despite windows/approval this close to expiry, 1–60
                         (default: the larger of 7 days and a tenth of the lifetime)
  --approval required    renewal deployments wait for certferry approve NAME
  --probe HOST:PORT[/sni=NAME]  outside TLS probe after deployments (repeatable, up to 10)
` + apiFlags},
		{"get", "show a name's certificate, install options and deployments", `usage: certferry get NAME [-o table|json] [-api URL]

Show a name's certificate (domain, serial, expiry), targets, files, reload and
check, rollout and lifecycle options, secret and every deployment
(GET /certificates/NAME, all pages).
  -o table|json   table (default) or the API's answer as indented JSON
` + apiFlags},
		{"status", "names, serials, expiry and nodes by state (or one name, or one node)", `usage: certferry status [NAME] [--node ID] [-o table|json] [-api URL]

  certferry status             one line per name: domain, serial, expiry (days
                               left), nodes installed / pending / failed, last deployment
  certferry status NAME        that line and the name's nodes; a pending node shows
                               the command it waits for
  certferry status --node ID   every name the node has: state, serial, last command
  -o table|json                table (default) or indented JSON
` + apiFlags + regionsUsage},
		{"redeploy", "deploy a name again now, to all its targets or to some nodes", `usage: certferry redeploy NAME [--instance ID …] [-api URL]

Send the name's current certificate again (POST /certificates/NAME/deployments).
  --instance ID   only to these nodes (repeatable or comma-separated, at most 50);
                  each must be a node of NAME: one the inventory has a record of,
                  or one of its InstanceIds targets
` + apiFlags},
		{"delete", "stop distributing a name (nodes keep their files)", `usage: certferry delete NAME [--delete-secret] [-api URL]

Stop distributing NAME (DELETE /certificates/NAME): its inventory goes, nodes
keep their files (README runbook: remove them). The secret certferry/NAME stays
unless --delete-secret.
  --delete-secret   also schedule the deletion of the name's secrets with a
                    30-day recovery window (aws secretsmanager restore-secret
                    undoes it until then)
` + apiFlags},
		{"rotate", "ask ACM to renew a name's certificate now (RenewCertificate)", `usage: certferry rotate NAME [-api URL]

Ask ACM to renew the certificate bound to NAME now (POST /certificates/NAME/renewals:
ACM RenewCertificate, once). Only exportable public and private certificates
that were exported before; ACM charges for each renewal of a public one. The
renewal's ACM event then deploys it to every name bound to the certificate
through each name's waves, maintenance windows and approval. Not idempotent:
each accepted call is a renewal. Records who asked (audit) and alerts.
` + apiFlags},
		{"approve", "release a name's deployment waiting for approval", `usage: certferry approve NAME [-api URL]

Release the renewal deployment of NAME that waits for approval
(POST /certificates/NAME/approvals). Records who approved (audit) and alerts.
` + apiFlags},
		{"rebind", "move a name to another certificate and deploy it", `usage: certferry rebind NAME --arn ARN [-api URL]

Move NAME to the ACM certificate ARN (POST /certificates/NAME/rebind): same
region, issued and exportable, not the one it is bound to. The new certificate
deploys at once, bypassing maintenance windows and approval when the bound one
is revoked or expired, else through the name's renewal path. Clears the
name's at-risk mark; records who rebound it (audit) and alerts.
  --arn ARN   the certificate to move NAME to
` + apiFlags},
		{"revoke", "revoke a name's certificate in ACM (permanent; asks to confirm)", `usage: certferry revoke NAME --reason REASON [--yes] [-api URL]

Revoke the certificate bound to NAME in ACM (POST /certificates/NAME/revocations:
ACM RevokeCertificate). Permanent, and for every name bound to that certificate:
each is marked at risk, its deployments stop, one alert says to request a
replacement and rebind. Asks you to type NAME back on a terminal first.
  --reason REASON   exportable public certificates: UNSPECIFIED, AFFILIATION_CHANGED,
                    SUPERSEDED, CESSATION_OF_OPERATION; private ones also
                    KEY_COMPROMISE, CA_COMPROMISE, PRIVILEGE_WITHDRAWN, A_A_COMPROMISE
  --yes             do not ask (scripts); without it and without a terminal,
                    revoke refuses (exit 2)
` + apiFlags},
		{"audit", "who rotated, approved, revoked, rebound or deleted a name, and when", `usage: certferry audit NAME [--limit N] [-o table|json] [-api URL]

Show the name's audit trail, newest first (GET /certificates/NAME/audit): every
rotation, approval, revocation, rebind and delete with the caller's IAM ARN
(or local:USER for commands run without -api) and time. Entries outlive a
deleted name for 400 days.
  --limit N        at most N entries (1-500, default 50)
  -o table|json    table (default) or indented JSON
` + apiFlags},
		{"local", "create the local resources (moto, or AWS with --real), seed, or run the rig proxy", LocalUsage},
		{"invoke", "run a real handler on an event file, no Docker", `usage: certferry invoke [-arn ARN] <function> <event.json>

Run a function's handler here on an event (events/*.json) and print its
answer. Functions: ` + functionNames() + `.
  -arn ARN   replace the fixtures' example certificate ARN with this one
Exit codes: 0 ok, 1 local failure, 2 usage, 3 the handler answered 4xx,
4 it answered 5xx or returned an error.
`},
		{"agent-run", "run an SSM document's Linux steps here as SSM Agent would", `usage: certferry agent-run [-platform Linux] [-instance-id ID] [-dir DIR] [-legacy-agent] <document.yaml> [Name=Value ...]

Run the document's steps for the platform as SSM Agent would (SSM_* variables,
downloads from S3 at AWS_ENDPOINT_URL, SIGKILL at each step's timeout). Exits
with the failing step's exit code.
`},
		{"demo", "the whole flow on a private moto_server, a renewal reaching nginx", DemoUsage},
		{"sync-template", "copy ssm-documents/ into template.yaml", `usage: certferry sync-template

Copy ` + localenv.DocumentFile + ` into template.yaml's InstallDocument (run
from the repository root).
`},
		{"version", "print the version and commit", `usage: certferry version

Print certferry's version and the commit it was built from.
`},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: certferry <command> [options]   (certferry <command> --help for one command)\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-14s %s\n", c.name, c.summary)
	}
	b.WriteString(`
Without -api, the API commands (onboard, get, status, redeploy, delete, rotate,
approve, rebind, revoke, audit) run the API handler here against CERTFERRY_TABLE /
CERTFERRY_DOCUMENT with your AWS credentials. Exit codes: 0 ok, 1 local failure, 2 usage, 3 the API refused the
request (4xx), 4 the API or AWS failed (5xx).
`)
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "certferry:", err)
	var code exitCodeError
	if errors.As(err, &code) {
		os.Exit(code.code)
	}
	os.Exit(cli.ExitCode(err))
}

// wantsHelp reports whether the arguments ask for help (-h, -help or
// --help before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func find(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// logLevel is the level of the JSON log lines the in-process handlers write
// on stderr: CERTFERRY_LOG_LEVEL (debug, info, warn, error), by default
// warn, so an operator's terminal shows answers, not the handlers' info
// lines (the demo writes every line to its log file).
func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("CERTFERRY_LOG_LEVEL"))); err != nil {
		return slog.LevelWarn
	}
	return l
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	slog.SetDefault(slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel()})))
	if len(args) == 0 {
		return &cli.UsageError{Msg: "no command\n" + usage()}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		_, err := fmt.Fprint(stdout, usage())
		return err
	case "help":
		if len(args) > 1 && wantsHelp(args[1:2]) {
			_, err := fmt.Fprint(stdout, usage())
			return err
		}
		if len(args) > 1 {
			if c, ok := find(args[1]); ok {
				_, err := fmt.Fprint(stdout, c.usage)
				return err
			}
			return unknown(args[1])
		}
		_, err := fmt.Fprint(stdout, usage())
		return err
	case "-v", "--version":
		args = []string{"version"}
	}
	c, ok := find(args[0])
	if !ok {
		return unknown(args[0])
	}
	// Before anything runs: --help on any command prints its usage and
	// does nothing else.
	if wantsHelp(args[1:]) {
		_, err := fmt.Fprint(stdout, c.usage)
		return err
	}
	return c.dispatch(ctx, args[1:], stdout, stderr)
}

func (c command) dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	env := cli.Env{Stdout: stdout, Connect: newCaller, Now: time.Now, Stdin: os.Stdin, Stderr: stderr, Interactive: stdinIsTerminal}
	noArgs := func() error {
		if len(args) > 0 {
			return cli.Usagef("certferry %s takes no arguments\n%s", c.name, c.usage)
		}
		return nil
	}
	switch c.name {
	case "onboard":
		return cli.RunOnboard(ctx, env, args)
	case "get":
		return cli.RunGet(ctx, env, args)
	case "status":
		if cli.WantsRegions(args) {
			return statusRegions(ctx, args, stdout)
		}
		return cli.RunStatus(ctx, env, args)
	case "redeploy":
		return cli.RunRedeploy(ctx, env, args)
	case "delete":
		return cli.RunDelete(ctx, env, args)
	case "rotate":
		return cli.RunRotate(ctx, env, args)
	case "approve":
		return cli.RunApprove(ctx, env, args)
	case "rebind":
		return cli.RunRebind(ctx, env, args)
	case "revoke":
		return cli.RunRevoke(ctx, env, args)
	case "audit":
		return cli.RunAudit(ctx, env, args)
	case "local":
		return local(ctx, args, stdout, stderr)
	case "invoke":
		return runInvoke(ctx, args, stdout)
	case "agent-run":
		return agentRun(ctx, args, stdout, stderr)
	case "demo":
		return demo(ctx, args, stdout, stderr)
	case "sync-template":
		if err := noArgs(); err != nil {
			return err
		}
		return syncTemplate("template.yaml", localenv.DocumentFile)
	case "version":
		if err := noArgs(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, versionString())
		return err
	}
	return unknown(c.name)
}

// usageError is the general usage as an error (exit 2).
func usageError() error { return &cli.UsageError{Msg: strings.TrimSpace(usage())} }

func unknown(name string) error {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cli.Suggest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return cli.Usagef("%s (certferry help lists the commands)", msg)
}

// versionString is "certferry <version> (commit <sha>[, modified])".
func versionString() string {
	rev, modified := commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
			case s.Key == "vcs.modified" && commit == "":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	out := fmt.Sprintf("certferry %s (commit %s", version, rev)
	if modified {
		out += ", modified"
	}
	return out + ")"
}

// runInvoke is `certferry invoke`: the handler's answer is printed, and an
// API answer of 400 or more fails the command (exit 3 or 4) with the
// API's error message, as a handler error does (exit 4).
func runInvoke(ctx context.Context, args []string, stdout io.Writer) error {
	arn, rest := "", args
	if len(rest) >= 2 && (rest[0] == "-arn" || rest[0] == "--arn") {
		arn, rest = rest[1], rest[2:]
	} else if len(rest) >= 1 && (strings.HasPrefix(rest[0], "-arn=") || strings.HasPrefix(rest[0], "--arn=")) {
		_, arn, _ = strings.Cut(rest[0], "=")
		rest = rest[1:]
	}
	if len(rest) != 2 || strings.HasPrefix(rest[0], "-") {
		return cli.Usagef("certferry invoke [-arn ARN] <function> <event.json> (functions: %s)", functionNames())
	}
	if _, ok := functions[rest[0]]; !ok {
		return cli.Usagef("unknown function %q (functions: %s)", rest[0], functionNames())
	}
	var out bytes.Buffer
	err := invoke(ctx, rest[0], rest[1], arn, &out)
	if _, werr := stdout.Write(out.Bytes()); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		if strings.Contains(err.Error(), rest[0]+" handler: ") {
			return &cli.HandlerError{Err: err}
		}
		return err
	}
	return invokeAnswer(rest[0], out.Bytes())
}

// invokeAnswer fails on an API answer of 400 or more.
func invokeAnswer(function string, out []byte) error {
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if json.Unmarshal(out, &resp) != nil || resp.StatusCode < 400 {
		return nil
	}
	return cli.NewAPIError("invoke", function, resp.StatusCode, []byte(resp.Body))
}
