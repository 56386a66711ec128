package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
)

// demo runs the whole onboarding flow on a private moto_server: two
// certificates (exportable public, private CA), two tagged instances and one
// untagged, both onboarded through the real API handler.
func demo(ctx context.Context, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	moto, err := motoserver.Start(ctx)
	if err != nil {
		return err
	}
	defer func() { moto.Stop(); say("\nmoto_server stopped.") }()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": moto.URL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "",
	} {
		os.Setenv(k, v)
	}
	say("== certferry demo: moto_server on %s (no AWS account, no Docker)", moto.URL)
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	// moto's ACM chains do not issue its certificates; the node installer
	// checks that they do, as AWS's always do.
	awsCfg.HTTPClient = &http.Client{Transport: localenv.ACMChainStandIn(http.DefaultTransport)}
	env, err := localenv.Up(ctx, awsCfg, localenv.DocumentFile)
	if err != nil {
		return err
	}
	say("\n== local up: table %s, document %s, topic %s, KMS key %s", env.Config.Table, env.Config.Document, env.Config.TopicARN, env.Config.KMSKeyID)
	buildDir, err := os.MkdirTemp("", "certferry-demo-installer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	// The demo's one node is this machine: only its build is published
	// (`certferry local up` publishes all three, as the stack does).
	host := localenv.HostPlatform()
	if env.Config.Installer, err = localenv.PublishInstaller(ctx, awsCfg, buildDir, host); err != nil {
		return err
	}
	hash := env.Config.Installer.SHA256LinuxAmd64 + env.Config.Installer.SHA256LinuxArm64
	say("  node installer (%s/%s) published: s3://%s/%s", host.GOOS, host.GOARCH, env.Config.Installer.Bucket,
		agentrun.InstallerKey(env.Config.Installer.KeyPrefix, hash, host.GOOS))

	publicARN, err := localenv.RequestExportable(ctx, awsCfg, "shop.example.com")
	if err != nil {
		return err
	}
	caARN, err := localenv.CreatePrivateCA(ctx, awsCfg)
	if err != nil {
		return err
	}
	privateARN, err := localenv.RequestPrivate(ctx, awsCfg, caARN, "api.internal.example")
	if err != nil {
		return err
	}
	say("\n== ACM certificates\n  public, Export ENABLED: %s\n  private CA:             %s", publicARN, privateARN)

	tagged, err := localenv.LaunchInstances(ctx, awsCfg, 2, map[string]string{"env": "prod", "certferry": "managed"})
	if err != nil {
		return err
	}
	untagged, err := localenv.LaunchInstances(ctx, awsCfg, 1, nil)
	if err != nil {
		return err
	}
	say("\n== EC2 instances\n  tagged env=prod: %s\n  untagged:        %s", strings.Join(tagged, ", "), strings.Join(untagged, ", "))

	handler := app.Onboard(awsCfg, env.Config, app.Options{})
	requests := []struct{ label, body string }{
		{"certferry shape", fmt.Sprintf(`{"certificateArn": %q, "name": "shop-web",
			"targets": [{"key": "tag:env", "values": ["prod"]}],
			"linux": {"certPath": "/etc/ssl/certs/shop-web.pem", "keyPath": "/etc/ssl/private/shop-web.key",
			          "reloadService": "nginx", "verifyPort": 443, "serverName": "shop.example.com"}}`, publicARN)},
		{"AWS sample shape", fmt.Sprintf(`{"CertificateArn": %q, "CertName": "internal-api",
			"TargetTagKey": "env", "TargetTagValue": "prod"}`, privateARN)},
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	ssmc := ssm.NewFromConfig(awsCfg)
	for _, r := range requests {
		resp, err := handler.Handle(ctx, events.APIGatewayProxyRequest{
			HTTPMethod: "POST", Resource: "/certificates", Path: "/certificates", Body: r.body,
		})
		if err != nil {
			return err
		}
		say("\n== POST /certificates (%s) -> %d\n  %s", r.label, resp.StatusCode, resp.Body)
		if resp.StatusCode != 202 {
			return fmt.Errorf("onboarding answered %d", resp.StatusCode)
		}
		var res struct{ Name, CommandID, Serial, FingerprintSha256 string }
		if err := json.Unmarshal([]byte(resp.Body), &res); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		versions, err := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(env.Config.SecretPrefix + res.Name)})
		if err != nil {
			return fmt.Errorf("list secret versions: %w", err)
		}
		for _, v := range versions.Versions {
			say("  secret %s%s version %s stages %v", env.Config.SecretPrefix, res.Name, aws.ToString(v.VersionId), v.VersionStages)
		}
		say("  serial %s\n  fingerprint %s", res.Serial, res.FingerprintSha256)
		cmd, err := ssmc.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(res.CommandID)})
		if err != nil || len(cmd.Commands) != 1 {
			return fmt.Errorf("read command %s: %v", res.CommandID, err)
		}
		c := cmd.Commands[0]
		say("  command %s (document %s) targets %s=%v -> instances %s",
			res.CommandID, aws.ToString(c.DocumentName), aws.ToString(c.Targets[0].Key), c.Targets[0].Values, strings.Join(c.InstanceIds, ", "))
		for _, id := range untagged {
			for _, got := range c.InstanceIds {
				if got == id {
					return fmt.Errorf("untagged instance %s was targeted", id)
				}
			}
		}
	}

	again, err := handler.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "POST", Resource: "/certificates", Path: "/certificates", Body: requests[0].body})
	if err != nil {
		return err
	}
	say("\n== the same onboarding again -> %d (idempotent: no new secret version, no new command)\n  %s", again.StatusCode, again.Body)

	list, err := handler.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/certificates", Path: "/certificates"})
	if err != nil {
		return err
	}
	say("\n== GET /certificates -> %d\n  %s", list.StatusCode, list.Body)
	if err := demoRenewal(ctx, awsCfg, env.Config, publicARN, say); err != nil {
		return err
	}
	stdout, err := demoNode(ctx, awsCfg, env.Config.Installer, moto.URL, publicARN, say)
	if err != nil {
		return err
	}
	return demoTrack(ctx, awsCfg, env.Config, stdout, say)
}

// demoRenewal delivers ACM events to the renewal handler: a renewal event
// (moto cannot renew under the same ARN, so the serial check finds nothing
// new), its redelivery, and an action-required event whose SNS alert is read
// back through a subscribed queue.
func demoRenewal(ctx context.Context, awsCfg aws.Config, cfg config.Config, arn string, say func(string, ...any)) error {
	queue, err := localenv.SubscribeQueue(ctx, awsCfg, cfg.TopicARN, "certferry-demo-alerts", true)
	if err != nil {
		return err
	}
	handler := app.Renewal(awsCfg, cfg, app.Options{})
	for _, step := range []struct{ label, file string }{
		{"ACM Certificate Available (RENEWAL)", "events/renewal-available-renewal.json"},
		{"the same event delivered again", "events/renewal-available-renewal.json"},
		{"ACM Certificate Renewal Action Required", "events/renewal-action-required.json"},
	} {
		raw, err := os.ReadFile(step.file)
		if err != nil {
			return err
		}
		out, err := handler.Handle(ctx, []byte(strings.ReplaceAll(string(raw), localenv.SampleARN, arn)))
		if err != nil {
			return fmt.Errorf("renewal handler: %w", err)
		}
		b, _ := json.Marshal(out)
		say("\n== renewal: %s\n  %s", step.label, b)
	}
	msgs, err := sqs.NewFromConfig(awsCfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10})
	if err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	if len(msgs.Messages) != 1 {
		return fmt.Errorf("%d alerts on the topic, want 1", len(msgs.Messages))
	}
	say("\n== the SNS alert, read back from a subscribed queue\n%s", indent(aws.ToString(msgs.Messages[0].Body), "  | "))
	return nil
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

// demoNode plays the part of one target node: `certferry agent-run` of the
// real document with the parameters of the command certferry sent, its
// download step against the emulator's installer bucket, certferry-node
// installing into a local nginx; then compares what nginx serves with ACM's
// certificate.
func demoNode(ctx context.Context, awsCfg aws.Config, in config.Installer, endpoint, arn string, say func(string, ...any)) (string, error) {
	say("\n== node install: the SSM document run here as SSM Agent would run it (download, SHA-256 check, certferry-node)")
	if _, err := localenv.NginxBinary(); err != nil {
		say("  skipped: %v; make deps installs it", err)
		return "", nil
	}
	cmds, err := ssm.NewFromConfig(awsCfg).ListCommands(ctx, &ssm.ListCommandsInput{})
	if err != nil {
		return "", fmt.Errorf("list commands: %w", err)
	}
	var params map[string][]string
	for _, c := range cmds.Commands {
		if p := c.Parameters; len(p["CertName"]) == 1 && p["CertName"][0] == "shop-web" {
			params = p
		}
	}
	if params == nil {
		return "", errors.New("no command for shop-web")
	}
	dir, err := os.MkdirTemp("", "certferry-demo-node-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	node, err := localenv.StartLocalNode(dir, params["ServerName"][0])
	if err != nil {
		return "", err
	}
	defer node.Stop()
	run := map[string]string{}
	for k, v := range params {
		run[k] = v[0]
	}
	for k, v := range localenv.InstallerParams(in) {
		if run[k] == "" { // the stack's values, when the sent command lacks them
			run[k] = v
		}
	}
	// The node here is not root's /etc/ssl and port 443: point the install at
	// the local nginx's files, port and directory; everything else is the
	// sent command's.
	for k, v := range node.Params() {
		if k != "ServerName" && k != "ReloadService" {
			run[k] = v
		}
	}
	doc, err := agentrun.Load(localenv.DocumentFile)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	agent := &agentrun.Agent{
		Root: filepath.Join(dir, "agent"), Platform: "Linux", InstanceID: localenv.SampleInstanceID, Region: awsCfg.Region,
		Env: node.EmulatorEnv(endpoint, awsCfg.Region), S3: localenv.NewS3(awsCfg), Stdout: &out, Stderr: &out,
	}
	res, err := agent.Run(ctx, doc, run)
	if err != nil {
		return "", err
	}
	install, _ := res.Step(document.StepLinux)
	for _, s := range res.Steps {
		say("  step %-20s %s", s.Name, s.Status)
	}
	say("  (the demo publishes only this machine's build, so the other architecture's download finds no object)")
	result, perr := document.ParseResult(install.Stdout)
	if perr != nil {
		return "", fmt.Errorf("the installLinux step printed no result (exit %d):\n%s", install.ExitCode, out.String())
	}
	say("  nginx on 127.0.0.1:%d, reload service %q, exit %d", node.Port, run["ReloadService"], install.ExitCode)
	say("  %s%s", document.ResultPrefix, document.ResultLine(install.Stdout))
	served, err := node.Served(params["ExpectedFingerprint"][0], 10*time.Second)
	if err != nil {
		return "", err
	}
	got, err := acm.NewFromConfig(awsCfg).GetCertificate(ctx, &acm.GetCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("get certificate: %w", err)
	}
	leaf, err := certs.ParsePEMCertificates(aws.ToString(got.Certificate))
	if err != nil {
		return "", err
	}
	acmFP := certs.Fingerprint(leaf[0].Raw)
	say("  nginx serves: %s\n  ACM's:        %s", served, acmFP)
	if served != acmFP || result.Status != document.StatusInstalled {
		return "", fmt.Errorf("the node does not serve ACM's certificate:\n%s", out.String())
	}
	say("  the node serves ACM's certificate.")
	return install.Stdout, nil
}
