// Command certferry is the operator and local-development CLI:
//
//	certferry local up                         create the resources the handlers need (moto or AWS) and publish the node installer
//	certferry agent-run <doc.yaml> [Name=V ...] run an SSM document's Linux steps here as SSM Agent would
//	certferry invoke <function> <event.json>   run a real handler on an event, no Docker
//	certferry demo                             the whole flow on a private moto_server
//	certferry status [-api URL] [name]         names, serials, expiry, nodes by state
//	certferry redeploy [-api URL] <name>       send a name's certificate to all its nodes now
//
// Every command honours AWS_ENDPOINT_URL, AWS_REGION and the CERTFERRY_* variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/samtemplate"
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

const usage = `usage:
  certferry local up
  certferry agent-run [-platform Linux] [-instance-id ID] [-dir DIR] [-legacy-agent] <document.yaml> [Name=Value ...]
  certferry invoke [-arn ARN] <function> <event.json>   (functions: %s)
  certferry demo
  certferry status [-api URL] [name]     table of names (or one name's nodes)
  certferry redeploy [-api URL] <name>   deploy a name to all its targets now
  certferry sync-template   copy ssm-documents/ into template.yaml
  (without -api, status and redeploy run the API handler here against
   CERTFERRY_TABLE / CERTFERRY_DOCUMENT with your AWS credentials)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "certferry:", err)
		var code exitCodeError
		if errors.As(err, &code) {
			os.Exit(code.code)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	slog.SetDefault(slog.New(slog.NewJSONHandler(stderr, nil)))
	if len(args) == 0 {
		return usageError()
	}
	switch args[0] {
	case "local":
		return local(ctx, args[1:], stdout, stderr)
	case "invoke":
		fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
		fs.SetOutput(stderr)
		arn := fs.String("arn", "", "replace the fixtures' example certificate ARN with this one")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return usageError()
		}
		return invoke(ctx, fs.Arg(0), fs.Arg(1), *arn, stdout)
	case "agent-run":
		return agentRun(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "status", "redeploy":
		fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
		fs.SetOutput(stderr)
		apiURL := fs.String("api", "", "the stack's ApiUrl (requests are SigV4-signed); empty: run the handler here")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 1 || args[0] == "redeploy" && fs.NArg() != 1 {
			return usageError()
		}
		call, err := newCaller(ctx, *apiURL)
		if err != nil {
			return err
		}
		if args[0] == "redeploy" {
			return redeploy(ctx, call, fs.Arg(0), stdout)
		}
		return status(ctx, call, fs.Arg(0), stdout, time.Now())
	case "sync-template":
		return syncTemplate("template.yaml", localenv.DocumentFile)
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, functionNames())
		return nil
	}
	return fmt.Errorf("unknown command %s\n%w", args[0], usageError())
}

func usageError() error {
	return errors.New(strings.TrimSpace(fmt.Sprintf(usage, functionNames())))
}
