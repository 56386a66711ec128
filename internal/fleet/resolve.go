package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/spec"
)

type instanceInfoAPI interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

var _ instanceInfoAPI = (*ssm.Client)(nil)

// Resolver finds the managed nodes (EC2 i- and hybrid mi-) that a spec's
// targets match right now and that SSM Agent reports online.
type Resolver struct{ api instanceInfoAPI }

// NewResolver returns a Resolver on SSM's DescribeInstanceInformation.
func NewResolver(api instanceInfoAPI) *Resolver { return &Resolver{api: api} }

// Resolve returns the online managed nodes matching targets (tag targets
// are ANDed, as SendCommand does), sorted.
func (r *Resolver) Resolve(ctx context.Context, targets []spec.Target) ([]string, error) {
	filters := []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("PingStatus"), Values: []string{"Online"}}}
	for _, t := range targets {
		key := t.Key
		if strings.EqualFold(key, "InstanceIds") {
			key = "InstanceIds"
		}
		filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String(key), Values: t.Values})
	}
	var ids []string
	p := ssm.NewDescribeInstanceInformationPaginator(r.api, &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(50)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe managed nodes for %s: %w", describeTargets(targets), err)
		}
		for _, i := range page.InstanceInformationList {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
