package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/renewal"
)

// DemoUsage is `certferry demo`'s usage text.
const DemoUsage = `usage: certferry demo [-v] [--keep]

Runs certferry's whole flow on a private moto_server (no AWS account, no
Docker): onboards an exportable public certificate and a private-CA
certificate through the API handler, installs them into a local nginx the way
SSM Agent runs certferry's document, renews the public certificate under the
same ARN (the rig's RenewCertificate stand-in), delivers ACM's "Certificate
Available" RENEWAL event to the renewal handler, installs the renewal and
shows nginx serving it.

  -v       also show the handlers' JSON logs and metric lines (always
           written to the log file the demo names)
  --keep   leave moto_server, the rig's proxy and nginx running and print the
           environment to use them from another shell, until Ctrl-C; renewal
           events and timed rollout steps go to the renewal handler
`

// demoFlags parses demo's arguments.
func demoFlags(args []string, stderr io.Writer) (verbose, keep bool, err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, DemoUsage) }
	v := fs.Bool("v", false, "show the JSON logs and metric lines")
	k := fs.Bool("keep", false, "keep moto_server, the proxy and nginx running until Ctrl-C")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, false, err
		}
		return false, false, cli.Usagef("%v\n%s", err, DemoUsage)
	}
	if fs.NArg() > 0 {
		return false, false, cli.Usagef("demo takes no arguments (got %q)\n%s", fs.Args(), DemoUsage)
	}
	return *v, *k, nil
}

// demo runs the whole flow on a private moto_server behind the rig's proxy.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verbose, keep, err := demoFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is printed
	}
	if err != nil {
		return err
	}
	d := &demoRun{out: stdout}
	logFile, err := os.CreateTemp("", "certferry-demo-*.log")
	if err != nil {
		return fmt.Errorf("create the demo's log file: %w", err)
	}
	defer logFile.Close()
	d.logw = logFile
	if verbose {
		d.logw = io.MultiWriter(logFile, stderr)
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(d.logw, nil)))
	defer slog.SetDefault(prev)

	d.say("certferry demo: the whole flow on a private moto_server (no AWS account, no Docker)")
	d.say("handler logs and metric lines: %s (-v shows them here)", logFile.Name())
	d.section("1. A local AWS")
	moto, err := motoserver.Start(ctx)
	if err != nil {
		return fmt.Errorf("%w (make deps installs moto_server)", err)
	}
	defer moto.Stop()
	proxy, err := localenv.StartProxy(moto.URL)
	if err != nil {
		return err
	}
	defer proxy.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": proxy.URL, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "",
	} {
		os.Setenv(k, v)
	}
	d.say("moto_server on %s, behind the rig's proxy on %s: it adds what moto lacks, as AWS documents it", moto.URL, proxy.URL)
	d.say("(certificate chains that issue their certificate, ACM RenewCertificate)")
	if d.aws, err = loadAWS(ctx); err != nil {
		return err
	}
	d.aws.HTTPClient = &http.Client{Timeout: time.Minute}
	env, err := localenv.Up(ctx, d.aws, localenv.DocumentFile)
	if err != nil {
		return err
	}
	d.cfg = env.Config
	d.say("certferry local up: table %s, SSM document %s, SNS topic %s, KMS key %s", d.cfg.Table, d.cfg.Document, d.cfg.TopicARN, localenv.KeyAlias)
	buildDir, err := os.MkdirTemp("", "certferry-demo-installer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	// The demo's nodes are this machine: only its build is published
	// (`certferry local up` publishes all three, as the stack does).
	host := localenv.HostPlatform()
	if d.cfg.Installer, err = localenv.PublishInstaller(ctx, d.aws, buildDir, host); err != nil {
		return err
	}
	d.say("node installer certferry-node (%s/%s) built and published to s3://%s", host.GOOS, host.GOARCH, d.cfg.Installer.Bucket)

	d.section("2. Certificates in ACM, instances in EC2")
	shopARN, err := localenv.RequestExportable(ctx, d.aws, "shop.example.com")
	if err != nil {
		return err
	}
	caARN, err := localenv.CreatePrivateCA(ctx, d.aws)
	if err != nil {
		return err
	}
	apiARN, err := localenv.RequestPrivate(ctx, d.aws, caARN, "api.internal.example")
	if err != nil {
		return err
	}
	d.say("shop.example.com      public, Options.Export ENABLED  %s", shopARN)
	d.say("api.internal.example  private CA                      %s", apiARN)
	tagged, err := localenv.LaunchInstances(ctx, d.aws, 2, map[string]string{"env": "prod"})
	if err != nil {
		return err
	}
	untagged, err := localenv.LaunchInstances(ctx, d.aws, 1, nil)
	if err != nil {
		return err
	}
	d.say("instances tagged env=prod: %s; untagged: %s", strings.Join(tagged, ", "), strings.Join(untagged, ", "))

	d.section("3. Onboard both through the API handler (API Gateway's request, the Lambda's answer)")
	d.api = app.Onboard(d.aws, d.cfg, app.Options{})
	shopBody := fmt.Sprintf(`{"certificateArn": %q, "name": "shop-web", "targets": [{"key": "tag:env", "values": ["prod"]}],
		"linux": {"certPath": "/etc/ssl/certs/shop-web.pem", "keyPath": "/etc/ssl/private/shop-web.key",
		"reloadService": "nginx", "verifyPort": 443, "serverName": "shop.example.com"}}`, shopARN)
	shop, err := d.onboard(ctx, "certferry's request shape", shopBody)
	if err != nil {
		return err
	}
	apiOnboard, err := d.onboard(ctx, "the AWS sample's request shape", fmt.Sprintf(
		`{"CertificateArn": %q, "CertName": "internal-api", "TargetTagKey": "env", "TargetTagValue": "prod"}`, apiARN))
	if err != nil {
		return err
	}
	again, err := d.request(ctx, "POST", "/certificates", shopBody, "the same request again, same body")
	if err != nil {
		return err
	}
	if again.CommandID != shop.CommandID {
		return fmt.Errorf("onboarding again sent command %s (first: %s)", again.CommandID, shop.CommandID)
	}
	d.say("  onboarding is idempotent: no new secret version, no second command")
	if err := d.checkTargets(ctx, shop.CommandID, tagged, untagged); err != nil {
		return err
	}

	d.section("4. The nodes install (SSM Agent's part, played here) and SSM reports back")
	d.say("Each name's command runs through `certferry agent-run` as SSM Agent runs the document: download")
	d.say("certferry-node from the bucket, check its SHA-256, install into a local nginx, reload, verify over TLS.")
	d.say("Both tagged instances are played by one local nginx per name.")
	nodesDir, err := os.MkdirTemp("", "certferry-demo-nodes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(nodesDir)
	d.nodesDir = nodesDir
	defer d.stopNodes()
	for _, n := range []struct{ name, command, domain string }{
		{"shop-web", shop.CommandID, "shop.example.com"},
		{"internal-api", apiOnboard.CommandID, "api.internal.example"},
	} {
		if err := d.deploy(ctx, n.name, n.command, n.domain, false); err != nil {
			return err
		}
	}
	before, err := d.nodes["shop-web"].ServedCert()
	if err != nil {
		return err
	}

	d.section("5. A renewal, end to end")
	alerts, err := localenv.SubscribeQueue(ctx, d.aws, d.cfg.TopicARN, "certferry-demo-alerts", true)
	if err != nil {
		return err
	}
	d.say("ACM RenewCertificate %s", shopARN)
	d.say("(the rig's stand-in: same ARN, new key pair, new serial; ACM then emits \"ACM Certificate Available\", Action RENEWAL;")
	d.say("the first export just after it fails with RequestInProgressException, as ACM's may, and certferry retries)")
	proxy.Renewals.ExportsInProgress = 1
	if _, err := acm.NewFromConfig(d.aws).RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(shopARN)}); err != nil {
		return fmt.Errorf("renew certificate %s: %w", shopARN, err)
	}
	renewed, err := certs.NewClient(acm.NewFromConfig(d.aws)).Describe(ctx, shopARN)
	if err != nil {
		return err
	}
	d.say("DescribeCertificate: serial %s, valid %s to %s, renewal %s", renewed.Serial, renewed.NotBefore.Format(time.DateOnly), renewed.NotAfter.Format(time.DateOnly), renewed.RenewalStatus)
	var event []byte
	select {
	case event = <-proxy.Renewals.Events():
	case <-time.After(10 * time.Second):
		return errors.New("the renewal stand-in emitted no ACM Certificate Available event")
	}
	out, err := d.renewalEvent(ctx, "EventBridge delivers it to the renewal handler", event, true)
	if err != nil {
		return err
	}
	if len(out.Deployed) != 1 || out.Deployed[0].Serial != renewed.Serial {
		return fmt.Errorf("the renewal handler did not deploy serial %s: %+v", renewed.Serial, out)
	}
	if _, err := d.renewalEvent(ctx, "EventBridge delivers the same event again (delivery is at least once)", event, false); err != nil {
		return err
	}
	d.cfg.NotifySuccess = true // CERTFERRY_NOTIFY_SUCCESS=true: an alert for the renewal's deployment too
	if err := d.deploy(ctx, "shop-web", out.Deployed[0].CommandID, "shop.example.com", true); err != nil {
		return err
	}
	after, err := d.nodes["shop-web"].ServedCert()
	if err != nil {
		return err
	}
	d.say("\nWhat nginx serves (TLS handshake to 127.0.0.1:%d, SNI shop.example.com):", d.nodes["shop-web"].Port)
	d.say("               %-42s %s", "before the renewal", "after")
	d.say("  serial       %-42s %s", certs.SerialHex(before.SerialNumber), certs.SerialHex(after.SerialNumber))
	d.say("  SHA-256      %-42s %s", shortFP(certs.Fingerprint(before.Raw)), shortFP(certs.Fingerprint(after.Raw)))
	d.say("  not before   %-42s %s", before.NotBefore.Format(time.RFC3339), after.NotBefore.Format(time.RFC3339))
	d.say("  not after    %-42s %s", before.NotAfter.Format(time.RFC3339), after.NotAfter.Format(time.RFC3339))
	if certs.SerialHex(after.SerialNumber) != renewed.Serial {
		return fmt.Errorf("nginx serves serial %s, ACM's renewed certificate is %s", certs.SerialHex(after.SerialNumber), renewed.Serial)
	}
	d.say("  nginx serves the renewed certificate: same ARN, new serial, new key.")
	if err := d.showAlerts(ctx, sqs.NewFromConfig(d.aws), alerts); err != nil {
		return err
	}

	d.section("6. Where things stand")
	var sb strings.Builder
	if err := status(ctx, handlerCaller(d.api), "", &sb, time.Now()); err != nil {
		return err
	}
	d.say("certferry status\n%s", indent(sb.String(), "  "))
	if _, err := d.request(ctx, "GET", "/certificates/shop-web", "", ""); err != nil {
		return err
	}
	if err := d.sweep(ctx); err != nil {
		return err
	}

	d.section("Summary")
	d.say("onboarded  shop-web (public, export enabled) and internal-api (private CA), each to the 2 instances tagged env=prod")
	d.say("deployed   each name installed into nginx by the SSM document, tracked to succeeded")
	d.say("renewed    shop-web under the same ARN: serial %s -> %s", certs.SerialHex(before.SerialNumber), renewed.Serial)
	d.say("verified   nginx's TLS handshake serves the renewed certificate; the untagged instance was never targeted")
	d.say("logs       %s", logFile.Name())
	d.section("Next steps")
	d.say("  certferry demo --keep              keep this environment and use it from another shell")
	d.say("  certferry local up --seed          the same resources on a moto_server of your own")
	d.say("  README.md \"Deploy to your AWS account\" the stack in a real account")
	if !keep {
		return nil
	}
	return d.keep(ctx, moto.URL, proxy, env)
}

// keep prints the environment and serves until ctx ends, delivering the
// renewal events of RenewCertificate calls made from elsewhere to the
// renewal handler (EventBridge's part).
func (d *demoRun) keep(ctx context.Context, motoURL string, proxy *localenv.Proxy, env localenv.Env) error {
	env.Endpoint = proxy.URL
	env.Config = d.cfg
	d.section("Kept running (Ctrl-C stops everything)")
	d.say("moto_server %s, the rig's proxy %s, nginx for shop-web on 127.0.0.1:%d, for internal-api on 127.0.0.1:%d",
		motoURL, proxy.URL, d.nodes["shop-web"].Port, d.nodes["internal-api"].Port)
	d.say("In another shell:\n")
	// The installer settings stay out: the demo published only this
	// machine's build, and the settings go together.
	lines := append(env.Exports(), "export AWS_DEFAULT_REGION="+env.Region, "export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo")
	d.say("%s\n", strings.Join(lines, "\n"))
	handler := app.Renewal(d.aws, d.cfg, app.Options{})
	// Timed rollout steps (windows, pauses, deadlines, reminders) fire on
	// the real clock, as under `certferry local proxy` (fireSteps): a
	// rollout paused here goes on when its pause ends.
	var (
		firer   *localenv.StepFirer
		steps   <-chan time.Time // nil: no schedule group, nothing fires
		stepped []renewal.Outcome
	)
	if sc := d.cfg.Schedule; sc.Configured() {
		var stop func()
		firer, steps, stop = fireSteps(proxy, sc, func(ctx context.Context, ev json.RawMessage) (any, error) {
			out, err := handler.Handle(ctx, ev)
			if err == nil {
				stepped = append(stepped, out)
			}
			return out, err
		}, d.out)
		defer stop()
		d.say("Timed rollout steps of schedule group %s go to the renewal handler when due (`certferry local schedules` lists them).", sc.Group)
	}
	d.say("then e.g. `go run ./cmd/certferry status`. `aws acm renew-certificate --certificate-arn ARN` renews")
	d.say("through the proxy; this process then plays EventBridge (the event goes to the renewal handler)")
	d.say("and the nodes (shop-web's and internal-api's nginx install the renewal, SSM's events go to the tracker).")
	for {
		select {
		case <-ctx.Done():
			d.say("\nstopping nginx, the proxy and moto_server.")
			return nil
		case now := <-steps:
			firer.Tick(ctx, now) // runs the handler on each due step (stepped)
			for _, out := range stepped {
				d.installDeployed(ctx, "rollout step", out)
			}
			stepped = nil
		case ev := <-proxy.Renewals.Events():
			out, err := handler.Handle(ctx, ev)
			if err != nil {
				d.say("renewal event: %v", err)
				continue
			}
			d.installDeployed(ctx, "renewal event", out)
		}
	}
}

// installDeployed has the demo's nodes install what a renewal event or a
// rollout step deployed (SSM Agent's part), for the names the demo has
// nodes of.
func (d *demoRun) installDeployed(ctx context.Context, what string, out renewal.Outcome) {
	for _, dep := range out.Deployed {
		if dep.CommandID == "" {
			d.say("%s: %s %s (nothing sent)", what, dep.Name, dep.Phase)
			continue
		}
		d.say("%s: %s deployed, serial %s, command %s", what, dep.Name, dep.Serial, dep.CommandID)
		if d.nodes[dep.Name] == nil {
			continue
		}
		if err := d.deploy(ctx, dep.Name, dep.CommandID, "", true); err != nil {
			d.say("  the node's install: %v", err)
			continue
		}
		if c, err := d.nodes[dep.Name].ServedCert(); err == nil {
			d.say("  nginx for %s on 127.0.0.1:%d now serves serial %s", dep.Name, d.nodes[dep.Name].Port, certs.SerialHex(c.SerialNumber))
		}
	}
}

// shortFP abbreviates a colon-separated fingerprint.
func shortFP(fp string) string {
	if len(fp) <= 23 {
		return fp
	}
	return fp[:11] + "…" + fp[len(fp)-11:]
}
