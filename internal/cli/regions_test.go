package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/regions"
	"github.com/certferry/certferry/internal/spec"
)

// fakeAWS is several accounts and regions: a stack (its table name) and
// an inventory table of items in each, per "account/region". Assumed
// credentials carry the account in their access key id ("ASIA" +
// account), so each client answers for its own account.
type fakeAWS struct {
	caller    string
	assumeErr map[string]error
	stacks    map[string]string  // account/region → InventoryTableName
	stackErr  map[string]error   // account/region
	tables    map[string]*fakeDB // account/region/table

	mu      sync.Mutex
	assumed []string
	cfCalls int
}

type fakeDB struct {
	items []map[string]ddbtypes.AttributeValue
	err   error
}

func (f *fakeAWS) account(creds aws.CredentialsProvider) string {
	if creds == nil {
		return f.caller
	}
	c, _ := creds.Retrieve(context.Background())
	return strings.TrimPrefix(c.AccessKeyID, "ASIA")
}

func (f *fakeAWS) STS(string) regions.STSAPI { return fakeAWSSTS{f} }
func (f *fakeAWS) CloudFormation(creds aws.CredentialsProvider, region string) regions.CloudFormationAPI {
	return fakeAWSCF{f, f.account(creds) + "/" + region}
}
func (f *fakeAWS) DynamoDB(creds aws.CredentialsProvider, region string) regions.DynamoDBAPI {
	return fakeAWSDDB{f, f.account(creds) + "/" + region}
}

type fakeAWSSTS struct{ f *fakeAWS }

func (s fakeAWSSTS) AssumeRole(_ context.Context, in *sts.AssumeRoleInput, _ ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	account := strings.Split(aws.ToString(in.RoleArn), ":")[4]
	s.f.mu.Lock()
	s.f.assumed = append(s.f.assumed, aws.ToString(in.RoleArn))
	s.f.mu.Unlock()
	if err := s.f.assumeErr[account]; err != nil {
		return nil, err
	}
	return &sts.AssumeRoleOutput{Credentials: &ststypes.Credentials{AccessKeyId: aws.String("ASIA" + account), SecretAccessKey: aws.String("s"), SessionToken: aws.String("t")}}, nil
}

func (s fakeAWSSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	if s.f.caller == "" {
		return nil, &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
	}
	return &sts.GetCallerIdentityOutput{Account: aws.String(s.f.caller)}, nil
}

type fakeAWSCF struct {
	f   *fakeAWS
	key string
}

func (c fakeAWSCF) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	c.f.mu.Lock()
	c.f.cfCalls++
	c.f.mu.Unlock()
	if err := c.f.stackErr[c.key]; err != nil {
		return nil, err
	}
	table, ok := c.f.stacks[c.key]
	if !ok || aws.ToString(in.StackName) != "certferry" {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{StackName: in.StackName, StackStatus: cftypes.StackStatusUpdateComplete,
		Outputs: []cftypes.Output{{OutputKey: aws.String("InventoryTableName"), OutputValue: aws.String(table)}}}}}, nil
}

// fakeAWSDDB answers the inventory's reads: GetItem by key, Query on PK
// and an SK prefix, Scan of the META items.
type fakeAWSDDB struct {
	f   *fakeAWS
	key string
}

func (d fakeAWSDDB) db(table *string) (*fakeDB, error) {
	db := d.f.tables[d.key+"/"+aws.ToString(table)]
	if db == nil {
		return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Requested resource not found"}
	}
	return db, db.err
}

func s(it map[string]ddbtypes.AttributeValue, k string) string {
	v, _ := it[k].(*ddbtypes.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

func (d fakeAWSDDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	db, err := d.db(in.TableName)
	if err != nil {
		return nil, err
	}
	for _, it := range db.items {
		if s(it, "PK") == s(in.Key, "PK") && s(it, "SK") == s(in.Key, "SK") {
			return &dynamodb.GetItemOutput{Item: it}, nil
		}
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (d fakeAWSDDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	db, err := d.db(in.TableName)
	if err != nil {
		return nil, err
	}
	pk, prefix := s(in.ExpressionAttributeValues, ":pk"), s(in.ExpressionAttributeValues, ":prefix")
	out := &dynamodb.QueryOutput{}
	for _, it := range db.items {
		if s(it, "PK") == pk && strings.HasPrefix(s(it, "SK"), prefix) {
			out.Items = append(out.Items, it)
		}
	}
	sort.Slice(out.Items, func(i, j int) bool { return s(out.Items[i], "SK") < s(out.Items[j], "SK") })
	return out, nil
}

func (d fakeAWSDDB) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	db, err := d.db(in.TableName)
	if err != nil {
		return nil, err
	}
	out := &dynamodb.ScanOutput{}
	for _, it := range db.items {
		if s(it, "SK") == "META" {
			out.Items = append(out.Items, it)
		}
	}
	return out, nil
}

func item(t *testing.T, v any) map[string]ddbtypes.AttributeValue {
	t.Helper()
	it, err := attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) { o.OmitEmptyTime = true })
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// seeded is a name's META item, one deployment and its nodes.
func seeded(t *testing.T, name, domain, serial string, notAfter time.Time, nodes map[string]inventory.NodeState) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	pk := inventory.CertKey(name)
	created := time.Date(2026, 11, 20, 0, 0, 5, 0, time.UTC)
	out := []map[string]ddbtypes.AttributeValue{item(t, inventory.Cert{
		PK: pk, SK: "META", Spec: spec.Spec{Name: name, CertificateARN: "arn:aws:acm:us-east-1:111111111111:certificate/" + name,
			Targets: []spec.Target{{Key: spec.TargetInstanceIDs, Values: []string{"i-0000000000000001a"}}}},
		Serial: serial, NotAfter: notAfter, DomainName: domain, Status: inventory.StatusActive, Version: 2, CreatedAt: created, UpdatedAt: created,
	})}
	if len(nodes) == 0 {
		return out
	}
	id := created.Format(inventory.DeploymentTimeFormat) + "-d1"
	out = append(out, item(t, inventory.Deployment{PK: pk, SK: "DEPLOY#" + id, ID: id, Name: name, CommandID: "c-" + name, Trigger: inventory.TriggerAPI,
		Serial: serial, Counts: map[inventory.NodeState]int{}, Outcome: inventory.OutcomeSucceeded, CreatedAt: created}))
	for iid, st := range nodes {
		n := inventory.Node{PK: pk, SK: "NODE#" + iid, InstanceID: iid, State: st, LastCommandID: "c-" + name, UpdatedAt: created}
		if st == inventory.NodeInstalled {
			n.Serial = serial
		}
		out = append(out, item(t, n))
	}
	return out
}

const acct1, acct2 = "111111111111", "222222222222"

// world is account 111… with stacks in us-east-1 (shop-web) and
// eu-west-1 (billing, api-gw), and 222… with a stack in us-east-1 only.
func world(t *testing.T) *fakeAWS {
	exp := time.Date(2026, 12, 23, 0, 0, 0, 0, time.UTC)
	return &fakeAWS{
		caller: acct1,
		stacks: map[string]string{acct1 + "/us-east-1": "certferry-InventoryTable-AAA", acct1 + "/eu-west-1": "certferry-InventoryTable-BBB", acct2 + "/us-east-1": "certferry-InventoryTable-CCC"},
		tables: map[string]*fakeDB{
			acct1 + "/us-east-1/certferry-InventoryTable-AAA": {items: seeded(t, "shop-web", "shop.example.com", "0c", exp,
				map[string]inventory.NodeState{"i-0000000000000001a": inventory.NodeInstalled, "i-0000000000000002a": inventory.NodePending})},
			acct1 + "/eu-west-1/certferry-InventoryTable-BBB": {items: append(seeded(t, "billing", "billing.example.eu", "0d", exp.AddDate(0, 1, 0), nil),
				seeded(t, "api-gw", "api.example.eu", "0e", exp.AddDate(0, -1, 10), map[string]inventory.NodeState{"mi-00000000000000001": inventory.NodeInstalled})...)},
			acct2 + "/us-east-1/certferry-InventoryTable-CCC": {items: seeded(t, "shop-web", "shop.example.org", "1f", exp, nil)},
		},
	}
}

func regionsEnv(f *fakeAWS, out *bytes.Buffer, localTable string) (RegionsEnv, *int) {
	connects := 0
	return RegionsEnv{
		Stdout:     out,
		Connect:    func(context.Context) (regions.Clients, error) { connects++; return f, nil },
		LocalTable: localTable,
		Now:        func() time.Time { return now },
	}, &connects
}

// status --regions with the caller's own credentials: one table, ACCOUNT
// and REGION first, names sorted within each region, regions in the
// order given; a region without the stack is a row saying so, and the
// exit code is 4 (AWS).
func TestStatusRegionsTable(t *testing.T) {
	f := world(t)
	var out bytes.Buffer
	e, _ := regionsEnv(f, &out, "")
	err := RunStatusRegions(context.Background(), e, []string{"--regions", "us-east-1,eu-west-1,ap-southeast-2"})
	var re *RegionsError
	if !errors.As(err, &re) || re.Failed != 1 || re.Total != 3 || ExitCode(err) != ExitServer {
		t.Fatalf("err = %v (exit %d), want 1 of 3 failed, exit 4", err, ExitCode(err))
	}
	golden(t, "status-regions.txt", out.String())

	out.Reset()
	err = RunStatusRegions(context.Background(), e, []string{"--regions", "us-east-1,eu-west-1,ap-southeast-2", "-o", "json"})
	if ExitCode(err) != ExitServer {
		t.Fatalf("json: err = %v", err)
	}
	golden(t, "status-regions.json", out.String())
	var doc struct {
		Certificates []struct{ Account, Region, Name string }
		Regions      []struct{ Account, Region, Table, Error string }
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range doc.Certificates {
		got = append(got, c.Account+" "+c.Region+" "+c.Name)
	}
	if want := "111111111111 us-east-1 shop-web,111111111111 eu-west-1 api-gw,111111111111 eu-west-1 billing"; strings.Join(got, ",") != want {
		t.Errorf("rows %v, want %s", got, want)
	}
	if len(doc.Regions) != 3 || doc.Regions[2].Error == "" || doc.Regions[0].Table != "certferry-InventoryTable-AAA" {
		t.Errorf("regions %+v", doc.Regions)
	}
}

// Through a role per account: each account's rows come from its own
// stacks; a refused role fails that account's rows only, saying how to fix
// it; the role is assumed once per account.
func TestStatusRegionsAssumeRole(t *testing.T) {
	f := world(t)
	f.caller = "999999999999"
	f.assumeErr = map[string]error{"333333333333": &smithy.GenericAPIError{Code: "AccessDenied",
		Message: "User: arn:aws:iam::999999999999:user/ops is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::333333333333:role/certferry-read"}}
	var out bytes.Buffer
	e, _ := regionsEnv(f, &out, "")
	err := RunStatusRegions(context.Background(), e, []string{"--regions", "us-east-1,eu-west-1", "--role-arn", "arn:aws:iam::{account}:role/certferry-read",
		"--accounts", acct1 + "," + acct2 + ",333333333333"})
	var re *RegionsError
	if !errors.As(err, &re) || re.Failed != 3 || re.Total != 6 || ExitCode(err) != ExitServer {
		t.Fatalf("err = %v, want 3 of 6 failed (222 eu-west-1, 333 twice), exit 4", err)
	}
	golden(t, "status-regions-role.txt", out.String())
	sort.Strings(f.assumed)
	if want := "arn:aws:iam::111111111111:role/certferry-read,arn:aws:iam::222222222222:role/certferry-read,arn:aws:iam::333333333333:role/certferry-read"; strings.Join(f.assumed, ",") != want {
		t.Errorf("assumed %v", f.assumed)
	}
}

// NAME: that name in every account and region; a region without it is a
// row, not a failure.
func TestStatusRegionsName(t *testing.T) {
	f := world(t)
	var out bytes.Buffer
	e, _ := regionsEnv(f, &out, "")
	if err := RunStatusRegions(context.Background(), e, []string{"shop-web", "--regions", "us-east-1,eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-regions-name.txt", out.String())
}

// CERTFERRY_TABLE is the table in every region, without CloudFormation,
// unless --stack-name is given.
func TestStatusRegionsLocalTable(t *testing.T) {
	f := world(t)
	f.tables[acct1+"/eu-west-1/certferry"] = f.tables[acct1+"/eu-west-1/certferry-InventoryTable-BBB"]
	var out bytes.Buffer
	e, _ := regionsEnv(f, &out, "certferry")
	err := RunStatusRegions(context.Background(), e, []string{"--regions", "eu-west-1,us-east-1", "-o", "json"})
	var re *RegionsError
	if !errors.As(err, &re) || re.Failed != 1 || f.cfCalls != 0 {
		t.Fatalf("err = %v, CloudFormation calls %d; want us-east-1 failing (no table certferry there), no CloudFormation", err, f.cfCalls)
	}
	if !strings.Contains(out.String(), `"table": "certferry"`) || !strings.Contains(out.String(), "no table certferry in us-east-1") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if err := RunStatusRegions(context.Background(), e, []string{"--regions", "eu-west-1,us-east-1", "--stack-name", "certferry"}); err != nil || f.cfCalls != 2 {
		t.Fatalf("--stack-name: err = %v, CloudFormation calls %d", err, f.cfCalls)
	}
}

// Local failures (no answer from AWS at all) exit 1; the caller's
// refused credentials stop everything (exit 4).
func TestStatusRegionsExitCodes(t *testing.T) {
	f := world(t)
	f.tables[acct1+"/us-east-1/certferry-InventoryTable-AAA"].err = errors.New("dial tcp 10.0.0.1:443: connect: network is unreachable")
	var out bytes.Buffer
	e, _ := regionsEnv(f, &out, "")
	err := RunStatusRegions(context.Background(), e, []string{"--regions", "us-east-1,eu-west-1"})
	if ExitCode(err) != ExitFailed || !strings.Contains(out.String(), "network is unreachable") || !strings.Contains(out.String(), "api-gw") {
		t.Fatalf("err = %v (exit %d), output:\n%s", err, ExitCode(err), out.String())
	}
	f.caller = ""
	out.Reset()
	err = RunStatusRegions(context.Background(), e, []string{"--regions", "us-east-1"})
	if ExitCode(err) != ExitFailed || !strings.Contains(err.Error(), "InvalidClientTokenId") || out.Len() != 0 {
		t.Fatalf("err = %v (exit %d), output %q", err, ExitCode(err), out.String())
	}
}

// Bad command lines are usage errors (exit 2) that reach no AWS API.
func TestStatusRegionsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"empty regions", []string{"--regions", ""}, "an empty region"},
		{"bad region", []string{"--regions", "us-east-1,mars-1"}, `"mars-1" is not a region code`},
		{"region twice", []string{"--regions", "us-east-1,us-east-1"}, "given twice"},
		{"accounts without role", []string{"--regions", "us-east-1", "--accounts", acct1}, "--accounts needs --role-arn"},
		{"external id without role", []string{"--regions", "us-east-1", "--external-id", "abc"}, "--external-id needs --role-arn"},
		{"template without accounts", []string{"--regions", "us-east-1", "--role-arn", "arn:aws:iam::{account}:role/r"}, "give the accounts"},
		{"bad account", []string{"--regions", "us-east-1", "--role-arn", "arn:aws:iam::{account}:role/r", "--accounts", "12345"}, "not a 12-digit account id"},
		{"two placeholders", []string{"--regions", "us-east-1", "--role-arn", "arn:aws:iam::{account}:role/{account}", "--accounts", acct1}, "placeholders"},
		{"literal ARN, other account", []string{"--regions", "us-east-1", "--role-arn", "arn:aws:iam::" + acct2 + ":role/r", "--accounts", acct1}, "names account 222222222222"},
		{"bad stack name", []string{"--regions", "us-east-1", "--stack-name", ""}, "--stack-name"},
		{"bad name", []string{"--regions", "us-east-1", "Shop_Web"}, "must match"},
		{"two names", []string{"--regions", "us-east-1", "a", "b"}, "at most one name"},
		{"node", []string{"--regions", "us-east-1", "--node", "i-0123"}, "--node"},
		{"api", []string{"--regions", "us-east-1", "-api", "https://x/v1"}, "-api does not apply"},
		{"output", []string{"--regions", "us-east-1", "-o", "yaml"}, "want table or json"},
		{"unknown flag", []string{"--regions", "us-east-1", "--region", "x"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			e, connects := regionsEnv(world(t), &out, "")
			err := RunStatusRegions(context.Background(), e, tt.args)
			if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (exit %d), want usage error with %q", err, ExitCode(err), tt.want)
			}
			if *connects != 0 || out.Len() != 0 {
				t.Errorf("a usage error connected (%d) or printed %q", *connects, out.String())
			}
		})
	}
}

func TestWantsRegions(t *testing.T) {
	for args, want := range map[string]bool{
		"--regions us-east-1": true, "-regions=us-east-1": true, "shop-web --regions=a": true,
		"shop-web": false, "--node i-1": false, "-- --regions": false, "--regionsx a": false,
	} {
		if got := WantsRegions(strings.Fields(args)); got != want {
			t.Errorf("WantsRegions(%q) = %v, want %v", args, got, want)
		}
	}
}
