package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/localenv"
)

// exitCodeError makes main exit with a step's exit code.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("a step failed with exit code %d", e.code) }

// agentRun runs a document's steps here as SSM Agent would:
//
//	certferry agent-run [-platform Linux] [-instance-id ID] [-dir DIR] [-legacy-agent] <document.yaml> [Name=Value ...]
func agentRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agent-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	platform := fs.String("platform", "Linux", "platformType the steps' preconditions are compared with")
	instance := fs.String("instance-id", localenv.SampleInstanceID, "AWS_SSM_INSTANCE_ID of the scripts")
	dir := fs.String("dir", "", "directory for the per-command orchestration directories (default: a new temporary one)")
	legacy := fs.Bool("legacy-agent", false, "play an SSM Agent older than 3.3.2746.0: no SSM_<Name> variables, {{Name}} pasted into scripts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usageError()
	}
	params := map[string]string{}
	for _, kv := range fs.Args()[1:] {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return fmt.Errorf("parameter %q is not Name=Value", kv)
		}
		params[name] = value
	}
	doc, err := agentrun.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	agent := &agentrun.Agent{
		Root: *dir, Platform: *platform, InstanceID: *instance, Region: awsCfg.Region,
		S3: localenv.NewS3(awsCfg), Legacy: *legacy, Stdout: stdout, Stderr: stderr,
	}
	res, err := agent.Run(ctx, doc, params)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return exitCodeError{res.ExitCode}
	}
	return nil
}
