package fleet

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/spec"
)

// moto has no DescribeInstanceInformation, so the resolver is checked here
// against a fake: the filters it sends and the pages it follows.
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
		out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id)})
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
	if want := []string{"PingStatus=[Online]", "tag:env=[prod]", "tag:role=[web api]"}; !slices.Equal(keys, want) {
		t.Fatalf("filters %v, want %v", keys, want)
	}
	f = &fakeInfo{pages: [][]string{{"i-0aaaaaaaaaaaaaaaa"}}}
	if _, err := NewResolver(f).Resolve(context.Background(), []spec.Target{{Key: "InstanceIds", Values: []string{"i-0aaaaaaaaaaaaaaaa", "mi-0aaaaaaaaaaaaaaaa"}}}); err != nil {
		t.Fatal(err)
	}
	if k := aws.ToString(f.filters[0][1].Key); k != "InstanceIds" {
		t.Fatalf("instance id targets filtered by %s", k)
	}
}
