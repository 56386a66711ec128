package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/api"
)

// Env is what the verbs need from the process: where to print, how to
// reach the API (-api URL, or "" for the handler in this process), and
// the clock (for days left).
type Env struct {
	Stdout  io.Writer
	Connect func(ctx context.Context, apiURL string) (Caller, error)
	Now     func() time.Time
	// Stdin, Stderr and Interactive (stdin is a terminal) serve the
	// confirmation `certferry revoke` asks for.
	Stdin       io.Reader
	Stderr      io.Writer
	Interactive func() bool
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// newFlags is a verb's flag set: errors come back as UsageError, nothing
// is printed by the flag package (the dispatcher prints help).
func newFlags(verb string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	apiURL := fs.String("api", "", "the stack's ApiUrl (requests are SigV4-signed); empty: the handler here")
	return fs, apiURL
}

// parse parses flags anywhere among the arguments (`get NAME -o json`
// as well as `get -o json NAME`) and returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, Usagef("certferry %s: %v (see certferry %s --help)", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (e Env) client(ctx context.Context, apiURL string) (Client, error) {
	call, err := e.Connect(ctx, apiURL)
	if err != nil {
		return Client{}, err
	}
	return Client{Call: call}, nil
}

// RunOnboard is `certferry onboard`.
func RunOnboard(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("onboard")
	var o Onboard
	var targets, instances multi
	fs.StringVar(&o.Name, "name", "", "")
	fs.StringVar(&o.ARN, "arn", "", "")
	fs.Var(&targets, "target", "")
	fs.Var(&instances, "instance", "")
	linuxStr := map[string]*string{}
	for _, f := range []struct{ flag, field string }{
		{"cert-path", "certPath"}, {"key-path", "keyPath"}, {"chain-path", "chainPath"}, {"keystore-path", "keystorePath"},
		{"format", "format"}, {"owner", "owner"}, {"group", "group"}, {"cert-mode", "certMode"}, {"key-mode", "keyMode"},
		{"reload", "reloadService"}, {"server-name", "serverName"}, {"verify-address", "verifyAddress"}, {"starttls", "starttls"},
	} {
		linuxStr[f.field] = fs.String(f.flag, "", "")
	}
	verifyPort := fs.Int("verify-port", 0, "")
	store := fs.String("windows-store", "", "")
	site := fs.String("iis-site", "", "")
	var windows, probes multi
	fs.StringVar(&o.Waves, "waves", "", "")
	pause := fs.Int("pause-minutes", 0, "")
	fs.StringVar(&o.StopAlarm, "stop-alarm", "", "")
	fs.Var(&windows, "window", "")
	margin := fs.Int("safety-margin-days", 0, "")
	fs.StringVar(&o.Approval, "approval", "", "")
	fs.Var(&probes, "probe", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return Usagef("certferry onboard takes no arguments (got %q); use --name and --arn", pos[0])
	}
	o.Targets, o.Instances = targets, instances
	o.Linux, o.Windows = map[string]any{}, map[string]any{}
	for field, v := range linuxStr {
		if *v != "" {
			o.Linux[field] = *v
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["verify-port"] {
		o.Linux["verifyPort"] = *verifyPort
	}
	if set["pause-minutes"] {
		o.PauseMinutes = pause
	}
	if set["safety-margin-days"] {
		o.SafetyMarginDays = margin
	}
	o.MaintenanceWindows, o.Probes = windows, probes
	if *store != "" {
		o.Windows["store"] = *store
	}
	if *site != "" {
		o.Windows["iisSite"] = *site
	}
	body, err := o.Body()
	if err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Onboard(ctx, body)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunGet is `certferry get NAME`.
func RunGet(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("get")
	out := fs.String("o", OutputTable, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return Usagef("certferry get takes one name")
	}
	if err := CheckOutput(*out); err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	p, err := c.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	if *out == OutputJSON {
		return PrintJSON(env.Stdout, p)
	}
	return CertDetail(env.Stdout, p, env.Now())
}

// RunDelete is `certferry delete NAME [--delete-secret]`.
func RunDelete(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("delete")
	secret := fs.Bool("delete-secret", false, "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return Usagef("certferry delete takes one name")
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Delete(ctx, pos[0], *secret)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunRedeploy is `certferry redeploy NAME [--instance ID …]`.
func RunRedeploy(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("redeploy")
	var instances multi
	fs.Var(&instances, "instance", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return Usagef("certferry redeploy takes one name")
	}
	var ids []string
	for _, i := range instances {
		ids = append(ids, strings.Split(i, ",")...)
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	raw, err := c.Redeploy(ctx, pos[0], ids)
	if err != nil {
		return err
	}
	return PrintJSON(env.Stdout, raw)
}

// RunStatus is `certferry status [NAME] [--node ID]`.
func RunStatus(ctx context.Context, env Env, args []string) error {
	fs, apiURL := newFlags("status")
	out := fs.String("o", OutputTable, "")
	node := fs.String("node", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || *node != "" && len(pos) > 0 {
		return Usagef("certferry status takes at most one name, or --node ID alone")
	}
	if err := CheckOutput(*out); err != nil {
		return err
	}
	c, err := env.client(ctx, *apiURL)
	if err != nil {
		return err
	}
	switch {
	case *node != "":
		p, err := c.Node(ctx, *node)
		if err != nil {
			return err
		}
		if *out == OutputJSON {
			return PrintJSON(env.Stdout, p)
		}
		return NodeNames(env.Stdout, p)
	case len(pos) == 1:
		p, err := c.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		if *out == OutputJSON {
			return PrintJSON(env.Stdout, p)
		}
		return NameStatus(env.Stdout, p, env.Now())
	}
	pages, err := statusPages(ctx, c)
	if err != nil {
		return err
	}
	if *out == OutputJSON {
		return PrintJSON(env.Stdout, map[string]any{"certificates": pages})
	}
	if len(pages) == 0 {
		_, err := fmt.Fprintln(env.Stdout, "no certificate onboarded yet (certferry onboard --help)")
		return err
	}
	return StatusTable(env.Stdout, pages, env.Now())
}

// statusPages reads every name (GET /certificates) and each name's pages.
func statusPages(ctx context.Context, c Client) ([]api.CertPage, error) {
	list, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	pages := []api.CertPage{}
	for _, cv := range list {
		p, err := c.Get(ctx, cv.Name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", cv.Name, err)
		}
		pages = append(pages, p)
	}
	return pages, nil
}
