// Package regions finds certferry's inventories across AWS accounts and
// regions: which accounts and regions to read (validated), the credentials
// of each account (the caller's own, or an IAM role assumed through STS),
// each region's stack and its InventoryTableName output (CloudFormation),
// and a bounded fan-out in which one failing account or region says what
// failed and how to fix it without hiding the others.
package regions

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// STSAPI is what regions calls on STS.
type STSAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// CloudFormationAPI is what regions calls on CloudFormation.
type CloudFormationAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// DynamoDBAPI is what reading an inventory calls on DynamoDB: reads only
// (ReadOnly turns it into the store's client, whose writes fail).
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var (
	_ STSAPI            = (*sts.Client)(nil)
	_ CloudFormationAPI = (*cloudformation.Client)(nil)
	_ DynamoDBAPI       = (*dynamodb.Client)(nil)
)

// Clients makes the clients of one region, with creds (nil: the caller's
// own credentials).
type Clients interface {
	STS(region string) STSAPI
	CloudFormation(creds aws.CredentialsProvider, region string) CloudFormationAPI
	DynamoDB(creds aws.CredentialsProvider, region string) DynamoDBAPI
}

// SDK makes real clients from the caller's configuration (which carries
// AWS_ENDPOINT_URL, retries and the caller's credentials).
type SDK struct{ Config aws.Config }

func (s SDK) config(creds aws.CredentialsProvider, region string) aws.Config {
	c := s.Config.Copy()
	c.Region = region
	if creds != nil {
		c.Credentials = creds
	}
	return c
}

// STS is STS in region with the caller's credentials.
func (s SDK) STS(region string) STSAPI { return sts.NewFromConfig(s.config(nil, region)) }

// CloudFormation is CloudFormation in region.
func (s SDK) CloudFormation(creds aws.CredentialsProvider, region string) CloudFormationAPI {
	return cloudformation.NewFromConfig(s.config(creds, region))
}

// DynamoDB is DynamoDB in region.
func (s SDK) DynamoDB(creds aws.CredentialsProvider, region string) DynamoDBAPI {
	return dynamodb.NewFromConfig(s.config(creds, region))
}

// Limits of the command line.
const (
	MaxRegions  = 40
	MaxAccounts = 200
	// DefaultStackName is the stack `sam deploy` creates (samconfig.toml).
	DefaultStackName = "certferry"
	// TableOutput is the stack output naming the inventory table
	// (template.yaml Outputs).
	TableOutput = "InventoryTableName"
	// Placeholder is replaced by each account id in a role ARN template.
	Placeholder = "{account}"
	// SessionName identifies certferry in the role's CloudTrail events
	// ("AssumeRole - AWS Security Token Service API Reference":
	// RoleSessionName, 2–64 characters of [\w+=,.@-]).
	SessionName = "certferry-status"
	// SessionDuration is the assumed session's lifetime: the least STS
	// allows ("AssumeRole": DurationSeconds, 900 to the role's maximum
	// session duration, default 3600); a read takes seconds.
	SessionDuration = 15 * time.Minute
	// DefaultCap is how many accounts and regions are read at once.
	DefaultCap = 4
	// DefaultTimeout bounds the work of one account and region: role,
	// stack and every inventory read, SDK retries included.
	DefaultTimeout = time.Minute
)

var (
	// RegionPattern is an AWS region code (us-east-1, eu-central-2,
	// us-gov-west-1, ap-southeast-5, eusc-de-east-1).
	RegionPattern  = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// A CloudFormation stack name: a letter, then letters, digits and
	// hyphens, at most 128 characters ("CreateStack": StackName).
	stackPattern = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`)
	// An IAM role ARN: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, the
	// account being 12 digits or {account}; role names are 1–64 of
	// [\w+=,.@-] ("IAM identifiers", "CreateRole": RoleName), path
	// segments the same characters (stricter than IAM's path pattern).
	roleARNPattern = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):iam::([0-9]{12}|\{account\}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$`)
	// "AssumeRole": ExternalId, 2–1224 characters of [\w+=,.@:/-].
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// ParseRegions reads a comma-separated list of region codes: each valid,
// none twice, in the order given.
func ParseRegions(s string) ([]string, error) {
	return parseList(s, "--regions", "region", MaxRegions, RegionPattern, "a region code such as us-east-1")
}

// ParseAccounts reads a comma-separated list of 12-digit account ids.
func ParseAccounts(s string) ([]string, error) {
	return parseList(s, "--accounts", "account", MaxAccounts, accountPattern, "a 12-digit account id")
}

func parseList(s, flag, what string, max int, re *regexp.Regexp, want string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			return nil, fmt.Errorf("%s %q: an empty %s (want a comma-separated list)", flag, s, what)
		case !re.MatchString(v):
			return nil, fmt.Errorf("%s: %q is not %s", flag, v, want)
		case seen[v]:
			return nil, fmt.Errorf("%s: %s %s is given twice", flag, what, v)
		}
		seen[v] = true
		out = append(out, v)
	}
	if len(out) > max {
		return nil, fmt.Errorf("%s: %d %ss, at most %d", flag, len(out), what, max)
	}
	return out, nil
}

// CheckStackName validates --stack-name (an empty name would make
// DescribeStacks describe every stack of the account).
func CheckStackName(s string) error {
	if !stackPattern.MatchString(s) {
		return fmt.Errorf("--stack-name %q: want a CloudFormation stack name (a letter, then letters, digits and hyphens, at most 128)", s)
	}
	return nil
}

// Role is the IAM role assumed in each account.
type Role struct {
	Template   string // arn:aws:iam::{account}:role/NAME, or one account's ARN
	ExternalID string // optional ("AssumeRole": ExternalId)
}

// ParseRole validates a role ARN template against the accounts given and
// returns the accounts to read: with the {account} placeholder (exactly
// one, in the ARN's account field) the accounts must be given; without it
// the ARN names its account, and the accounts, if given, must be that one.
func ParseRole(template, externalID string, accounts []string) (*Role, []string, error) {
	if n := strings.Count(template, Placeholder); n > 1 {
		return nil, nil, fmt.Errorf("--role-arn %q: %d %s placeholders, want one (in the account field)", template, n, Placeholder)
	}
	m := roleARNPattern.FindStringSubmatch(template)
	if m == nil {
		return nil, nil, fmt.Errorf("--role-arn %q: want arn:aws:iam::%s:role/NAME (or a role ARN with a 12-digit account)", template, Placeholder)
	}
	if externalID != "" && (len(externalID) < 2 || len(externalID) > 1224 || !externalIDPattern.MatchString(externalID)) {
		return nil, nil, errors.New("--external-id: want 2 to 1224 characters of letters, digits and _+=,.@:/-")
	}
	r := &Role{Template: template, ExternalID: externalID}
	if m[2] == Placeholder {
		if len(accounts) == 0 {
			return nil, nil, fmt.Errorf("--role-arn %q has %s: give the accounts with --accounts 111111111111,222222222222", template, Placeholder)
		}
		return r, accounts, nil
	}
	for _, a := range accounts {
		if a != m[2] {
			return nil, nil, fmt.Errorf("--role-arn names account %s but --accounts has %s: write the ARN with %s in its account field", m[2], a, Placeholder)
		}
	}
	return r, []string{m[2]}, nil
}

// ARN is the role's ARN in account.
func (r *Role) ARN(account string) string {
	return strings.Replace(r.Template, Placeholder, account, 1)
}

// Source is one account and region's inventory.
type Source struct {
	Account, Region string
	StackName       string // "" when the table came from CERTFERRY_TABLE
	Table           string
	DynamoDB        DynamoDBAPI // with the account's credentials, in Region
}

// Outcome is what became of one account and region: Err (a *Failure) when
// it could not be read.
type Outcome struct {
	Source
	Err error
}

// Finder reads every account and region.
type Finder struct {
	Clients Clients
	// Role, when set, is assumed in every account; without it the caller's
	// own credentials and account are used.
	Role *Role
	// StackName is the stack whose InventoryTableName output names the
	// table, unless LocalTable is set.
	StackName string
	// LocalTable is the table in every region, without CloudFormation
	// (CERTFERRY_TABLE, e.g. after `certferry local up`).
	LocalTable string
	Cap        int           // accounts and regions at once (DefaultCap when 0)
	Timeout    time.Duration // per account and region (DefaultTimeout when 0)
}

// CallerAccount is the account of the caller's own credentials.
func (f *Finder) CallerAccount(ctx context.Context, region string) (string, error) {
	out, err := f.Clients.STS(region).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("read the account of your AWS credentials (sts GetCallerIdentity in %s): %w", region, err)
	}
	return aws.ToString(out.Account), nil
}

// Each calls read for every account (in order) and region (in order), at
// most Cap at a time, each under Timeout; the outcomes come back in that
// order. read's error, like a failure to assume the role or find the
// stack, fails that account and region only.
func (f *Finder) Each(ctx context.Context, accounts, regions []string, read func(context.Context, Source) error) []Outcome {
	limit, timeout := f.Cap, f.Timeout
	if limit <= 0 {
		limit = DefaultCap
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(accounts) == 0 || len(regions) == 0 {
		return nil
	}
	out := make([]Outcome, 0, len(accounts)*len(regions))
	for _, a := range accounts {
		for _, r := range regions {
			out = append(out, Outcome{Source: Source{Account: a, Region: r}})
		}
	}
	creds := &roleCache{f: f, stsRegion: regions[0], byAccount: map[string]*assumed{}}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	// Started in the order given (the semaphore is taken before each
	// goroutine starts), at most limit at once.
	for i := range out {
		o := &out[i]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			o.Err = &Failure{Account: o.Account, Region: o.Region, Step: StepRole, Err: ctx.Err(), Fix: "interrupted before it started"}
			continue
		}
		wg.Add(1)
		go func(o *Outcome) {
			defer wg.Done()
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			o.Err = f.one(tctx, creds, &o.Source, read)
			if o.Err != nil && tctx.Err() != nil && ctx.Err() == nil {
				var fl *Failure
				if errors.As(o.Err, &fl) && fl.Fix == "" {
					fl.Fix = fmt.Sprintf("no answer within %s: retry", timeout)
				}
			}
		}(o)
	}
	wg.Wait()
	return out
}

func (f *Finder) one(ctx context.Context, creds *roleCache, s *Source, read func(context.Context, Source) error) error {
	fail := func(step Step, err error) error {
		return &Failure{Account: s.Account, Region: s.Region, Step: step, StackName: s.StackName, Table: s.Table, RoleARN: creds.arn(s.Account), Err: err}
	}
	var cp aws.CredentialsProvider
	if f.Role != nil {
		var err error
		if cp, err = creds.get(ctx, s.Account); err != nil {
			return fail(StepRole, err)
		}
	}
	s.Table = f.LocalTable
	if s.Table == "" {
		s.StackName = f.StackName
		table, err := f.table(ctx, f.Clients.CloudFormation(cp, s.Region))
		if err != nil {
			return fail(StepStack, err)
		}
		s.Table = table
	}
	s.DynamoDB = f.Clients.DynamoDB(cp, s.Region)
	if err := read(ctx, *s); err != nil {
		return fail(StepRead, err)
	}
	return nil
}

// errNoStack and errNoOutput are the stack step's own failures.
var (
	errNoStack  = errors.New("no such stack")
	errNoOutput = errors.New("no " + TableOutput + " output")
)

// table reads the stack's InventoryTableName output. A stack that does not
// exist is a ValidationError "Stack with id NAME does not exist" (the
// CloudFormation query API's answer; boto/boto3#2807 shows it verbatim).
func (f *Finder) table(ctx context.Context, cf CloudFormationAPI) (string, error) {
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(f.StackName)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "does not exist") {
		return "", fmt.Errorf("describe stack %s: %w (%s)", f.StackName, errNoStack, ae.ErrorMessage())
	}
	if err != nil {
		return "", fmt.Errorf("describe stack %s: %w", f.StackName, err)
	}
	if len(out.Stacks) == 0 {
		return "", fmt.Errorf("describe stack %s: %w", f.StackName, errNoStack)
	}
	st := out.Stacks[0]
	for _, o := range st.Outputs {
		if aws.ToString(o.OutputKey) == TableOutput && aws.ToString(o.OutputValue) != "" {
			return aws.ToString(o.OutputValue), nil
		}
	}
	return "", fmt.Errorf("stack %s (%s): %w", f.StackName, st.StackStatus, errNoOutput)
}

// roleCache assumes the role once per account (every region of the
// account shares the session).
type roleCache struct {
	f         *Finder
	stsRegion string
	mu        sync.Mutex
	byAccount map[string]*assumed
}

type assumed struct {
	once  sync.Once
	creds aws.Credentials
	err   error
}

func (c *roleCache) arn(account string) string {
	if c.f.Role == nil {
		return ""
	}
	return c.f.Role.ARN(account)
}

func (c *roleCache) get(ctx context.Context, account string) (aws.CredentialsProvider, error) {
	c.mu.Lock()
	a := c.byAccount[account]
	if a == nil {
		a = &assumed{}
		c.byAccount[account] = a
	}
	c.mu.Unlock()
	a.once.Do(func() { a.creds, a.err = c.assume(ctx, account) })
	if a.err != nil {
		return nil, a.err
	}
	creds := a.creds
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }), nil
}

func (c *roleCache) assume(ctx context.Context, account string) (aws.Credentials, error) {
	arn := c.arn(account)
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(arn),
		RoleSessionName: aws.String(SessionName),
		DurationSeconds: aws.Int32(int32(SessionDuration / time.Second)),
	}
	if c.f.Role.ExternalID != "" {
		in.ExternalId = aws.String(c.f.Role.ExternalID)
	}
	out, err := c.f.Clients.STS(c.stsRegion).AssumeRole(ctx, in)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role %s: %w", arn, err)
	}
	if out.Credentials == nil {
		return aws.Credentials{}, fmt.Errorf("assume role %s: STS answered without credentials", arn)
	}
	cr := out.Credentials
	return aws.Credentials{
		AccessKeyID: aws.ToString(cr.AccessKeyId), SecretAccessKey: aws.ToString(cr.SecretAccessKey),
		SessionToken: aws.ToString(cr.SessionToken), Source: "certferry AssumeRole " + arn,
		CanExpire: cr.Expiration != nil, Expires: aws.ToTime(cr.Expiration), AccountID: account,
	}, nil
}

// Step is where an account and region failed.
type Step string

// Steps of one account and region.
const (
	StepRole  Step = "assume role"
	StepStack Step = "find stack"
	StepRead  Step = "read inventory"
)

// Failure is one account and region that could not be read: what failed
// and how to fix it.
type Failure struct {
	Account, Region string
	Step            Step
	StackName       string
	Table           string
	RoleARN         string
	Err             error
	Fix             string // set when the cause is known before Error()
}

func (e *Failure) Unwrap() error { return e.Err }

// AWS reports whether AWS answered with an error (or did not answer in
// time): the failure is AWS's or its configuration's, not this machine's.
func (e *Failure) AWS() bool {
	var ae smithy.APIError
	return errors.As(e.Err, &ae) || errors.Is(e.Err, errNoStack) || errors.Is(e.Err, errNoOutput) ||
		errors.Is(e.Err, context.DeadlineExceeded)
}

func (e *Failure) Error() string {
	var ae smithy.APIError
	code := ""
	if errors.As(e.Err, &ae) {
		code = ae.ErrorCode()
	}
	throttled := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(e.Err) == aws.TrueTernary
	fix := e.Fix
	switch {
	case fix != "":
	case throttled:
		fix = "AWS throttled the calls after the SDK's retries: retry in a minute, or read fewer regions at once"
	case errors.Is(e.Err, errNoStack):
		return fmt.Sprintf("no stack named %s in %s of account %s: deploy it there or pass --stack-name", e.StackName, e.Region, e.Account)
	case errors.Is(e.Err, errNoOutput):
		return fmt.Sprintf("%v in %s of account %s: not a certferry stack, or still being created; pass --stack-name", e.Err, e.Region, e.Account)
	case e.Step == StepRole && isAccessDenied(code):
		fix = "your principal needs sts:AssumeRole on the role, and the role's trust policy must allow your account or principal"
		if e.RoleARN != "" && strings.Contains(e.Err.Error(), "ExternalId") {
			fix += " (with the external id it expects)"
		}
	case e.Step == StepRole && code == "RegionDisabledException":
		fix = "activate STS in that region (IAM account settings) or list another region first"
	case e.Step == StepStack && isAccessDenied(code):
		fix = fmt.Sprintf("grant cloudformation:DescribeStacks on the stack %s (README \"Across accounts and regions\")", e.StackName)
	case e.Step == StepRead && isAccessDenied(code):
		fix = fmt.Sprintf("grant dynamodb:Scan, dynamodb:Query and dynamodb:GetItem on the table %s (README \"Across accounts and regions\")", e.Table)
	case e.Step == StepRead && code == "ResourceNotFoundException":
		fix = fmt.Sprintf("no table %s in %s: check the stack's %s output or CERTFERRY_TABLE", e.Table, e.Region, TableOutput)
	case code == "UnrecognizedClientException" || code == "InvalidClientTokenId" || code == "ExpiredToken" || code == "ExpiredTokenException":
		fix = "refresh your AWS credentials"
	}
	msg := e.Err.Error()
	if fix != "" {
		msg += ": " + fix
	}
	return msg
}

func isAccessDenied(code string) bool {
	return code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation"
}
