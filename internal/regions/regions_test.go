package regions

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

func TestParseRegions(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"two in order", "us-east-1,eu-west-1", []string{"us-east-1", "eu-west-1"}, ""},
		{"spaces trimmed", " eu-central-2 , us-gov-west-1", []string{"eu-central-2", "us-gov-west-1"}, ""},
		{"sovereign cloud", "eusc-de-east-1", []string{"eusc-de-east-1"}, ""},
		{"empty", "", nil, `--regions "": an empty region`},
		{"trailing comma", "us-east-1,", nil, "an empty region"},
		{"not a region", "us-east", nil, `"us-east" is not a region code`},
		{"upper case", "US-EAST-1", nil, "is not a region code"},
		{"injection", "us-east-1/../x", nil, "is not a region code"},
		{"twice", "us-east-1,us-east-1", nil, "region us-east-1 is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRegions(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	many := strings.Repeat("us-east-1,", MaxRegions+1)
	if _, err := ParseRegions(strings.TrimSuffix(many, ",")); err == nil {
		t.Error("a repeated list passed")
	}
}

func TestParseAccounts(t *testing.T) {
	if got, err := ParseAccounts("111111111111,222222222222"); err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"11111111111", "1111111111111", "11111111111a", "111111111111,111111111111", ""} {
		if _, err := ParseAccounts(bad); err == nil {
			t.Errorf("%q passed", bad)
		}
	}
}

func TestParseRole(t *testing.T) {
	two := []string{"111111111111", "222222222222"}
	tests := []struct {
		name, arn, extID string
		accounts         []string
		wantARN          string // the ARN of the first account
		wantAccounts     []string
		err              string
	}{
		{"template", "arn:aws:iam::{account}:role/certferry-read", "", two, "arn:aws:iam::111111111111:role/certferry-read", two, ""},
		{"template with path", "arn:aws:iam::{account}:role/ops/certferry-read", "ext-1", two, "arn:aws:iam::111111111111:role/ops/certferry-read", two, ""},
		{"other partition", "arn:aws-us-gov:iam::{account}:role/r", "", two, "arn:aws-us-gov:iam::111111111111:role/r", two, ""},
		{"literal ARN, no accounts", "arn:aws:iam::333333333333:role/r", "", nil, "arn:aws:iam::333333333333:role/r", []string{"333333333333"}, ""},
		{"literal ARN, its account", "arn:aws:iam::333333333333:role/r", "", []string{"333333333333"}, "arn:aws:iam::333333333333:role/r", []string{"333333333333"}, ""},
		{"literal ARN, another account", "arn:aws:iam::333333333333:role/r", "", two, "", nil, "names account 333333333333 but --accounts has 111111111111"},
		{"template without accounts", "arn:aws:iam::{account}:role/r", "", nil, "", nil, "give the accounts with --accounts"},
		{"two placeholders", "arn:aws:iam::{account}:role/{account}", "", two, "", nil, "2 {account} placeholders"},
		{"placeholder in the name", "arn:aws:iam::111111111111:role/{account}", "", two, "", nil, "want arn:aws:iam::{account}:role/NAME"},
		{"not a role", "arn:aws:iam::{account}:user/bob", "", two, "", nil, "want arn:aws:iam::{account}:role/NAME"},
		{"not iam", "arn:aws:s3:::{account}", "", two, "", nil, "want arn"},
		{"short account", "arn:aws:iam::1111:role/r", "", nil, "", nil, "want arn"},
		{"name too long", "arn:aws:iam::{account}:role/" + strings.Repeat("r", 65), "", two, "", nil, "want arn"},
		{"bad external id", "arn:aws:iam::{account}:role/r", "a b", two, "", nil, "--external-id"},
		{"external id too short", "arn:aws:iam::{account}:role/r", "a", two, "", nil, "--external-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, accounts, err := ParseRole(tt.arn, tt.extID, tt.accounts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.ARN(accounts[0]); got != tt.wantARN || strings.Join(accounts, ",") != strings.Join(tt.wantAccounts, ",") || r.ExternalID != tt.extID {
				t.Fatalf("ARN %q accounts %v external id %q; want %q %v %q", got, accounts, r.ExternalID, tt.wantARN, tt.wantAccounts, tt.extID)
			}
		})
	}
}

func TestCheckStackName(t *testing.T) {
	for _, ok := range []string{"certferry", "certferry-prod", "C1"} {
		if err := CheckStackName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// An empty name would describe every stack of the account.
	for _, bad := range []string{"", "1certferry", "cert_ferry", "arn:aws:cloudformation:x", strings.Repeat("a", 129)} {
		if err := CheckStackName(bad); err == nil {
			t.Errorf("%q passed", bad)
		}
	}
}

// fakeClients answers per account (the assumed credentials' access key
// id is "ASIA" + the account) and region.
type fakeClients struct {
	caller    string
	assumeErr map[string]error // by account
	stacks    map[string]*cloudformation.DescribeStacksOutput
	stackErr  map[string]error // by account/region

	mu      sync.Mutex
	assumed []sts.AssumeRoleInput
	cfCalls []string // account/region
}

type fakeSTS struct{ f *fakeClients }

func (s fakeSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	s.f.mu.Lock()
	s.f.assumed = append(s.f.assumed, *in)
	s.f.mu.Unlock()
	account := strings.Split(aws.ToString(in.RoleArn), ":")[4]
	if err := s.f.assumeErr[account]; err != nil {
		return nil, err
	}
	return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{
		AccessKeyId: aws.String("ASIA" + account), SecretAccessKey: aws.String("s"), SessionToken: aws.String("t"),
		Expiration: aws.Time(time.Date(2026, 11, 23, 0, 15, 0, 0, time.UTC)),
	}}, nil
}

func (s fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String(s.f.caller)}, nil
}

type fakeCF struct {
	f               *fakeClients
	account, region string
}

func (c fakeCF) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	k := c.account + "/" + c.region
	c.f.mu.Lock()
	c.f.cfCalls = append(c.f.cfCalls, k)
	c.f.mu.Unlock()
	if err := c.f.stackErr[k]; err != nil {
		return nil, err
	}
	if out, ok := c.f.stacks[k]; ok {
		return out, nil
	}
	return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
}

type fakeDDB struct{ DynamoDBAPI }

func (f *fakeClients) account(creds aws.CredentialsProvider) string {
	if creds == nil {
		return f.caller
	}
	c, _ := creds.Retrieve(context.Background())
	return strings.TrimPrefix(c.AccessKeyID, "ASIA")
}

func (f *fakeClients) STS(string) STSAPI { return fakeSTS{f} }
func (f *fakeClients) CloudFormation(creds aws.CredentialsProvider, region string) CloudFormationAPI {
	return fakeCF{f, f.account(creds), region}
}
func (f *fakeClients) DynamoDB(aws.CredentialsProvider, string) DynamoDBAPI { return fakeDDB{} }

func stack(table string) *cloudformation.DescribeStacksOutput {
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{
		StackName: aws.String("certferry"), StackStatus: cftypes.StackStatusCreateComplete,
		Outputs: []cftypes.Output{{OutputKey: aws.String("ApiUrl"), OutputValue: aws.String("https://x")}, {OutputKey: aws.String(TableOutput), OutputValue: aws.String(table)}},
	}}}
}

// One failing account or region fails its rows only, each saying what
// failed and how to fix it; the role is assumed once per account, with
// the templated ARN, certferry's session name and the least duration.
func TestEachRowsAndRole(t *testing.T) {
	f := &fakeClients{
		assumeErr: map[string]error{"222222222222": &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:iam::999999999999:user/ops is not authorized to perform: sts:AssumeRole"}},
		stacks: map[string]*cloudformation.DescribeStacksOutput{
			"111111111111/us-east-1": stack("t-use1"),
			"333333333333/us-east-1": {Stacks: []cftypes.Stack{{StackName: aws.String("certferry"), StackStatus: cftypes.StackStatusCreateInProgress}}},
			"333333333333/eu-west-1": stack("t-euw1"),
		},
		stackErr: map[string]error{"333333333333/eu-west-1": &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}},
	}
	role, accounts, err := ParseRole("arn:aws:iam::{account}:role/certferry-read", "ext-1", []string{"111111111111", "222222222222", "333333333333"})
	if err != nil {
		t.Fatal(err)
	}
	fd := &Finder{Clients: f, Role: role, StackName: "certferry", Cap: 2}
	var read sync.Map
	outs := fd.Each(context.Background(), accounts, []string{"us-east-1", "eu-west-1"}, func(_ context.Context, s Source) error {
		read.Store(s.Account+"/"+s.Region, s.Table)
		return nil
	})
	want := []struct{ key, err string }{
		{"111111111111/us-east-1", ""},
		{"111111111111/eu-west-1", "no stack named certferry in eu-west-1 of account 111111111111: deploy it there or pass --stack-name"},
		{"222222222222/us-east-1", "assume role arn:aws:iam::222222222222:role/certferry-read: api error AccessDenied: User: arn:aws:iam::999999999999:user/ops is not authorized to perform: sts:AssumeRole: your principal needs sts:AssumeRole on the role, and the role's trust policy must allow your account or principal"},
		{"222222222222/eu-west-1", "assume role arn:aws:iam::222222222222:role/certferry-read: api error AccessDenied"},
		{"333333333333/us-east-1", "stack certferry (CREATE_IN_PROGRESS): no InventoryTableName output in us-east-1 of account 333333333333: not a certferry stack, or still being created; pass --stack-name"},
		{"333333333333/eu-west-1", "describe stack certferry: api error Throttling: Rate exceeded: AWS throttled the calls after the SDK's retries"},
	}
	if len(outs) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(outs), len(want))
	}
	for i, w := range want {
		o := outs[i]
		if got := o.Account + "/" + o.Region; got != w.key {
			t.Errorf("outcome %d is %s, want %s (the order given)", i, got, w.key)
		}
		switch {
		case w.err == "" && o.Err != nil:
			t.Errorf("%s: %v", w.key, o.Err)
		case w.err != "" && (o.Err == nil || !strings.HasPrefix(o.Err.Error(), w.err)):
			t.Errorf("%s: err = %v\nwant prefix %s", w.key, o.Err, w.err)
		case w.err != "":
			var fl *Failure
			if !errors.As(o.Err, &fl) || !fl.AWS() {
				t.Errorf("%s: %v is not an AWS failure", w.key, o.Err)
			}
			if _, ok := read.Load(w.key); ok {
				t.Errorf("%s was read despite failing", w.key)
			}
		}
	}
	if tbl, _ := read.Load("111111111111/us-east-1"); tbl != "t-use1" {
		t.Errorf("table read = %v, want the stack's output", tbl)
	}
	if len(f.assumed) != 3 {
		t.Errorf("AssumeRole called %d times, want once per account (3)", len(f.assumed))
	}
	for _, in := range f.assumed {
		if aws.ToString(in.RoleSessionName) != SessionName || aws.ToInt32(in.DurationSeconds) != 900 || aws.ToString(in.ExternalId) != "ext-1" ||
			strings.Contains(aws.ToString(in.RoleArn), "{") {
			t.Errorf("AssumeRole input %+v", in)
		}
	}
	for _, k := range f.cfCalls {
		if strings.HasPrefix(k, "222222222222/") {
			t.Errorf("CloudFormation called in %s although its role was refused", k)
		}
	}
}

// At most Cap accounts and regions are read at once, and Cap are.
func TestEachCap(t *testing.T) {
	const limit, n = 2, 7
	f := &fakeClients{caller: "123456789012"}
	var inflight, most atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	var regs []string
	for i := range n {
		regs = append(regs, "us-east-"+string(rune('1'+i)))
	}
	fd := &Finder{Clients: f, LocalTable: "t", Cap: limit}
	done := make(chan []Outcome)
	go func() {
		done <- fd.Each(context.Background(), []string{"123456789012"}, regs, func(context.Context, Source) error {
			v := inflight.Add(1)
			for {
				m := most.Load()
				if v <= m || most.CompareAndSwap(m, v) {
					break
				}
			}
			started <- struct{}{}
			<-release
			inflight.Add(-1)
			return nil
		})
	}()
	for range limit {
		<-started
	}
	for i := range n {
		release <- struct{}{}
		if i+limit < n {
			<-started
		}
	}
	outs := <-done
	if most.Load() != limit {
		t.Errorf("at most %d in flight, want %d", most.Load(), limit)
	}
	for _, o := range outs {
		if o.Err != nil || o.Table != "t" || o.StackName != "" {
			t.Errorf("%s: table %q stack %q err %v", o.Region, o.Table, o.StackName, o.Err)
		}
	}
	if len(f.cfCalls) != 0 {
		t.Errorf("CloudFormation called with a local table: %v", f.cfCalls)
	}
}

// Failures' fixes and whether they are AWS's or local.
func TestFailureMessages(t *testing.T) {
	tests := []struct {
		name string
		f    Failure
		want string
		aws  bool
	}{
		{"stack access denied", Failure{Step: StepStack, StackName: "certferry", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}},
			"api error AccessDenied: no: grant cloudformation:DescribeStacks on the stack certferry", true},
		{"table access denied", Failure{Step: StepRead, Table: "t", Err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}},
			"api error AccessDeniedException: no: grant dynamodb:Scan, dynamodb:Query and dynamodb:GetItem on the table t", true},
		{"no table", Failure{Step: StepRead, Table: "t", Region: "eu-west-1", Err: &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "gone"}},
			"api error ResourceNotFoundException: gone: no table t in eu-west-1", true},
		{"throttled read", Failure{Step: StepRead, Err: &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}},
			"slow down: AWS throttled the calls after the SDK's retries", true},
		{"expired", Failure{Step: StepRole, Err: &smithy.GenericAPIError{Code: "ExpiredToken", Message: "old"}},
			"old: refresh your AWS credentials", true},
		{"network", Failure{Step: StepStack, Err: errors.New("dial tcp: connection refused")}, "dial tcp: connection refused", false},
		{"deadline", Failure{Step: StepRead, Err: context.DeadlineExceeded, Fix: "no answer within 1m0s: retry"}, "context deadline exceeded: no answer within 1m0s: retry", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("Error() = %q, want %q in it", got, tt.want)
			}
			if tt.f.AWS() != tt.aws {
				t.Errorf("AWS() = %v, want %v", tt.f.AWS(), tt.aws)
			}
		})
	}
}

// Writes through ReadOnly fail and reach nothing.
func TestReadOnly(t *testing.T) {
	ro := ReadOnly(fakeDDB{})
	ctx := context.Background()
	for name, err := range map[string]error{
		"PutItem":            second(ro.PutItem(ctx, &dynamodb.PutItemInput{})),
		"UpdateItem":         second(ro.UpdateItem(ctx, &dynamodb.UpdateItemInput{})),
		"DeleteItem":         second(ro.DeleteItem(ctx, &dynamodb.DeleteItemInput{})),
		"TransactWriteItems": second(ro.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{})),
		"BatchWriteItem":     second(ro.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{})),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
