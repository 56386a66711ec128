package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

// moto has no DescribeInstanceInformation: the resolver is checked against
// a fake (the filters it sends, the pages it follows) and against the SSM
// stand-in, which does what AWS documents.
type fakeInfo struct {
	filters [][]ssmtypes.InstanceInformationStringFilter
	pages   [][]string
}

func (f *fakeInfo) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	f.filters = append(f.filters, in.Filters)
	page := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &page)
	}
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, id := range f.pages[page] {
		out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline})
	}
	if page+1 < len(f.pages) {
		out.NextToken = aws.String(fmt.Sprint(page + 1))
	}
	return out, nil
}

func TestResolve(t *testing.T) {
	f := &fakeInfo{pages: [][]string{{"mi-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"}, {"i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"}}}
	got, err := NewResolver(f).Resolve(context.Background(), []spec.Target{{Key: "tag:env", Values: []string{"prod"}}, {Key: "tag:role", Values: []string{"web", "api"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "mi-0aaaaaaaaaaaaaaaa"}; !slices.Equal(got, want) {
		t.Fatalf("nodes %v, want %v (both pages, sorted, once each)", got, want)
	}
	if len(f.filters) != 2 {
		t.Fatalf("%d calls, want 2 pages", len(f.filters))
	}
	var keys []string
	for _, fl := range f.filters[0] {
		keys = append(keys, aws.ToString(fl.Key)+"="+fmt.Sprint(fl.Values))
	}
	// Tag filters alone: AWS refuses them combined with any other filter
	// (this test once expected a PingStatus filter beside them).
	if want := []string{"tag:env=[prod]", "tag:role=[web api]"}; !slices.Equal(keys, want) {
		t.Fatalf("filters %v, want %v", keys, want)
	}
	f = &fakeInfo{pages: [][]string{{"i-0aaaaaaaaaaaaaaaa"}}}
	if _, err := NewResolver(f).Resolve(context.Background(), []spec.Target{{Key: "InstanceIds", Values: []string{"i-0aaaaaaaaaaaaaaaa", "mi-0aaaaaaaaaaaaaaaa"}}}); err != nil {
		t.Fatal(err)
	}
	if len(f.filters[0]) != 1 || aws.ToString(f.filters[0][0].Key) != "InstanceIds" {
		t.Fatalf("instance id targets filtered by %v", f.filters[0])
	}
}

// Against the stand-in: tag filters alone, Online nodes only, pages of 50,
// EC2 and hybrid nodes, instance ids SSM does not manage left out.
func TestResolveOnStandIn(t *testing.T) {
	s := testkit.NewSSMStandIn(nil)
	web := map[string]string{"env": "prod", "role": "web"}
	var want []string
	for i := range 60 {
		id := fmt.Sprintf("i-%017x", i)
		s.Register(testkit.SSMNode{InstanceID: id, Tags: web})
		want = append(want, id)
	}
	s.Register(testkit.SSMNode{InstanceID: "mi-0aaaaaaaaaaaaaaaa", Platform: "Windows", Tags: map[string]string{"env": "prod", "role": "api"}},
		testkit.SSMNode{InstanceID: "i-0ffffffffffffff01", PingStatus: "ConnectionLost", Tags: web},
		testkit.SSMNode{InstanceID: "i-0ffffffffffffff02", Tags: map[string]string{"env": "dev", "role": "web"}})
	want = append(want, "mi-0aaaaaaaaaaaaaaaa")
	slices.Sort(want)
	p, err := testkit.NewFaultProxy("http://127.0.0.1:1") // every call is the stand-in's
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s.Plug(p)
	api := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "t", SecretAccessKey: "t"}, nil
		})})
	r := NewResolver(api)
	got, err := r.Resolve(context.Background(), []spec.Target{{Key: "tag:env", Values: []string{"prod"}}, {Key: "tag:role", Values: []string{"web", "api"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("resolved %d nodes, want the %d online ones (EC2 and hybrid)", len(got), len(want))
	}
	if n := s.Calls()["AmazonSSM.DescribeInstanceInformation"]; n != 2 {
		t.Fatalf("%d calls, want 2 pages of at most 50", n)
	}
	got, err = r.Resolve(context.Background(), []spec.Target{{Key: "InstanceIds", Values: []string{"mi-0aaaaaaaaaaaaaaaa", "i-0ffffffffffffff01", "i-0123456789abcdef0", want[0]}}})
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{want[0], "mi-0aaaaaaaaaaaaaaaa"}; !slices.Equal(got, w) {
		t.Fatalf("instance ids resolved to %v, want %v (online and managed only)", got, w)
	}
}

// Unmanaged: the ids SSM no longer manages, asked one by one only when
// the call with all of them is refused; a node still managed counts
// whatever its PingStatus; throttling is an error, never a node gone.
// Send names the refusal of a SendCommand by instance ids.
func TestUnmanagedOnStandIn(t *testing.T) {
	s := testkit.NewSSMStandIn(nil)
	a, b, c := "i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"
	s.Register(testkit.SSMNode{InstanceID: a}, testkit.SSMNode{InstanceID: b, PingStatus: "ConnectionLost"}, testkit.SSMNode{InstanceID: c})
	p, err := testkit.NewFaultProxy("http://127.0.0.1:1") // every DescribeInstanceInformation is the stand-in's
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s.Plug(p)
	api := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL), RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "t", SecretAccessKey: "t"}, nil
		})})
	r := NewResolver(api)
	ctx := context.Background()
	if gone, err := r.Unmanaged(ctx, []string{a, b, c}); err != nil || len(gone) != 0 {
		t.Fatalf("all managed: %v %v", gone, err)
	}
	if n := s.Calls()["AmazonSSM.DescribeInstanceInformation"]; n != 1 {
		t.Fatalf("%d calls, want 1 when every id is managed", n)
	}
	s.Deregister(c)
	gone, err := r.Unmanaged(ctx, []string{a, c, b})
	if err != nil || !slices.Equal(gone, []string{c}) {
		t.Fatalf("gone %v %v, want %s alone (%s is ConnectionLost, still managed)", gone, err, c, b)
	}
	if n := s.Calls()["AmazonSSM.DescribeInstanceInformation"]; n != 4 {
		t.Fatalf("%d calls, want 1 refused then 3 one by one", n)
	}
	p.Inject("AmazonSSM.DescribeInstanceInformation", testkit.Fault{Status: 400, Code: "ThrottlingException", Times: -1})
	if gone, err := r.Unmanaged(ctx, []string{a, c}); err == nil || len(gone) != 0 || IsNotManaged(err) {
		t.Fatalf("throttled: %v %v, want an error and no node gone", gone, err)
	}
	p.Clear()

	f := New(api, Options{Document: "certferry-install"})
	in := Install{Spec: spec.Spec{Name: "shop-web", Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}, Only: []string{a, c}, SendID: NewSendID()}
	if _, err := f.Send(ctx, in); !errors.Is(err, ErrInstancesRefused) || !IsNotManaged(err) {
		t.Fatalf("send to a gone node: %v, want ErrInstancesRefused", err)
	}
	p.Inject("AmazonSSM.SendCommand", testkit.Throttle)
	in.Only = []string{a}
	if _, err := f.Send(ctx, in); err == nil || errors.Is(err, ErrInstancesRefused) {
		t.Fatalf("throttled send: %v, want an error that is not a refusal", err)
	}
}
