package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/regions"
	"github.com/certferry/certferry/internal/spec"
)

// RegionsEnv is what `certferry status --regions` needs from the process.
type RegionsEnv struct {
	Stdout io.Writer
	// Connect returns the AWS clients (the caller's configuration).
	Connect func(ctx context.Context) (regions.Clients, error)
	// LocalTable is CERTFERRY_TABLE: when set (and --stack-name is not
	// given) it is the table in every region, without CloudFormation.
	LocalTable string
	Now        func() time.Time
	Cap        int           // accounts and regions read at once (regions.DefaultCap when 0)
	Timeout    time.Duration // per account and region (regions.DefaultTimeout when 0)
}

// WantsRegions reports whether status's arguments ask for several regions
// (--regions, before any "--").
func WantsRegions(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "regions" {
			return true
		}
	}
	return false
}

// RegionRow is one name of one account and region (-o json).
type RegionRow struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	api.CertPage
}

// RegionSource is one account and region: where its inventory is, how
// many rows it gave, or what failed and how to fix it (-o json).
type RegionSource struct {
	Account      string `json:"account"`
	Region       string `json:"region"`
	StackName    string `json:"stackName,omitempty"`
	Table        string `json:"table,omitempty"`
	Certificates int    `json:"certificates"`
	Error        string `json:"error,omitempty"`
}

// RegionsError says some accounts and regions could not be read. Its exit
// code is 4 when AWS refused or failed any of them (AccessDenied, no
// stack, throttling, no answer in time), else 1 (local: credentials,
// network).
type RegionsError struct {
	Failed, Total int
	AWS           bool
}

func (e *RegionsError) Error() string {
	return fmt.Sprintf("%d of %d account/region(s) could not be read: their rows say what failed and how to fix it", e.Failed, e.Total)
}

// ExitCode is 4 (AWS failed) or 1 (local failure).
func (e *RegionsError) ExitCode() int {
	if e.AWS {
		return ExitServer
	}
	return ExitFailed
}

// RunStatusRegions is `certferry status --regions R,R [--stack-name S]
// [--role-arn ARN --accounts A,A [--external-id ID]] [-o table|json] [NAME]`.
func RunStatusRegions(ctx context.Context, env RegionsEnv, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	regionList := fs.String("regions", "", "")
	stackName := fs.String("stack-name", regions.DefaultStackName, "")
	roleARN := fs.String("role-arn", "", "")
	accountList := fs.String("accounts", "", "")
	externalID := fs.String("external-id", "", "")
	out := fs.String("o", OutputTable, "")
	apiURL := fs.String("api", "", "")
	node := fs.String("node", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *apiURL != "":
		return Usagef("certferry status --regions reads each stack's inventory itself: -api does not apply")
	case *node != "":
		return Usagef("certferry status --regions takes no --node (run certferry status --node ID in the node's region)")
	case len(pos) > 1:
		return Usagef("certferry status --regions takes at most one name")
	case set["accounts"] && *roleARN == "":
		return Usagef("--accounts needs --role-arn arn:aws:iam::{account}:role/NAME (the role read in each account)")
	case set["external-id"] && *roleARN == "":
		return Usagef("--external-id needs --role-arn")
	}
	if err := CheckOutput(*out); err != nil {
		return err
	}
	regs, err := regions.ParseRegions(*regionList)
	if err != nil {
		return Usagef("%v", err)
	}
	if err := regions.CheckStackName(*stackName); err != nil {
		return Usagef("%v", err)
	}
	var accounts []string
	if *accountList != "" {
		if accounts, err = regions.ParseAccounts(*accountList); err != nil {
			return Usagef("%v", err)
		}
	}
	f := &regions.Finder{StackName: *stackName, Cap: env.Cap, Timeout: env.Timeout}
	if *roleARN != "" {
		if f.Role, accounts, err = regions.ParseRole(*roleARN, *externalID, accounts); err != nil {
			return Usagef("%v", err)
		}
	}
	if !set["stack-name"] {
		f.LocalTable = env.LocalTable
	}
	name := ""
	if len(pos) == 1 {
		if name = pos[0]; !spec.NamePattern.MatchString(name) {
			return Usagef("name %q: must match %s", name, spec.NamePattern)
		}
	}
	if f.Clients, err = env.Connect(ctx); err != nil {
		return err
	}
	if f.Role == nil {
		acct, err := f.CallerAccount(ctx, regs[0])
		if err != nil {
			return err
		}
		accounts = []string{acct}
	}
	pages := make([][]api.CertPage, len(accounts)*len(regs))
	outcomes := f.Each(ctx, accounts, regs, func(ctx context.Context, s regions.Source) error {
		p, err := readSource(ctx, s, name)
		if err != nil {
			return err
		}
		pages[indexOf(accounts, regs, s)] = p
		return nil
	})
	var rows []RegionRow
	sources := make([]RegionSource, len(outcomes))
	failed, awsFailed := 0, false
	for i, o := range outcomes {
		sources[i] = RegionSource{Account: o.Account, Region: o.Region, StackName: o.StackName, Table: o.Table}
		if o.Err != nil {
			sources[i].Error = o.Err.Error()
			failed++
			var fl *regions.Failure
			awsFailed = awsFailed || errors.As(o.Err, &fl) && fl.AWS()
			continue
		}
		sources[i].Certificates = len(pages[i])
		for _, p := range pages[i] {
			rows = append(rows, RegionRow{Account: o.Account, Region: o.Region, CertPage: p})
		}
	}
	if *out == OutputJSON {
		if rows == nil {
			rows = []RegionRow{}
		}
		err = PrintJSON(env.Stdout, map[string]any{"certificates": rows, "regions": sources})
	} else {
		err = RegionsTable(env.Stdout, rows, sources, env.Now())
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return &RegionsError{Failed: failed, Total: len(outcomes), AWS: awsFailed}
	}
	return nil
}

func indexOf(accounts, regs []string, s regions.Source) int {
	for i, a := range accounts {
		for j, r := range regs {
			if a == s.Account && r == s.Region {
				return i*len(regs) + j
			}
		}
	}
	panic("regions: source " + s.Account + "/" + s.Region + " not asked for")
}

// readSource reads one inventory through the API handler's own read path
// (GET /certificates and GET /certificates/{name}, as `status` does),
// on a read-only client. Its error is the inventory's own (the handler
// answers a dependency failure without details).
func readSource(ctx context.Context, s regions.Source, name string) ([]api.CertPage, error) {
	rec := &recordingStore{Store: inventory.NewStore(regions.ReadOnly(s.DynamoDB), s.Table)}
	c := Client{Call: HandlerCaller(api.NewHandler(nil, rec))}
	var pages []api.CertPage
	var err error
	if name != "" {
		var p api.CertPage
		p, err = c.Get(ctx, name)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound && rec.err == nil:
			err = nil // the name is not in this region
		case err == nil:
			pages = []api.CertPage{p}
		}
	} else {
		pages, err = statusPages(ctx, c)
	}
	if rec.err != nil {
		return nil, rec.err
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(pages, func(i, j int) bool { return pages[i].Name < pages[j].Name })
	return pages, nil
}

// recordingStore keeps the inventory's first read error.
type recordingStore struct {
	*inventory.Store
	err error
}

func (r *recordingStore) keep(err error) error {
	if err != nil && r.err == nil {
		r.err = err
	}
	return err
}

func (r *recordingStore) ListCerts(ctx context.Context) ([]inventory.Cert, error) {
	c, err := r.Store.ListCerts(ctx)
	return c, r.keep(err)
}

func (r *recordingStore) DescribePage(ctx context.Context, name string, limit int, next string) (*inventory.Page, error) {
	p, err := r.Store.DescribePage(ctx, name, limit, next)
	if errors.Is(err, inventory.ErrBadToken) {
		return p, err
	}
	return p, r.keep(err)
}

// RegionsTable prints one line per account, region and name; an account
// and region without names has one line, and one that failed says why in
// ERROR.
func RegionsTable(w io.Writer, rows []RegionRow, sources []RegionSource, now time.Time) error {
	tw := table(w)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tNAME\tDOMAIN\tSERIAL\tEXPIRES\tINSTALLED\tPENDING\tFAILED\tLAST DEPLOYMENT\tERROR")
	for _, s := range sources {
		n := 0
		for _, r := range rows {
			if r.Account != s.Account || r.Region != s.Region {
				continue
			}
			n++
			p := r.CertPage
			in, pend, fail := NodeCounts(p)
			last := "-"
			if d := lastDeployment(p); d != nil {
				last = fmt.Sprintf("%s %s (%s)", stamp(d.CreatedAt), d.Outcome, d.Trigger)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t-\n", r.Account, r.Region, p.Name, dash(p.DomainName), Short(p.Serial),
				Expires(p.NotAfter, now), in, pend, fail, last)
		}
		if n > 0 {
			continue
		}
		what := "(none)"
		if s.Error != "" {
			what = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\n", s.Account, s.Region, what, dash(s.Error))
	}
	return tw.Flush()
}
