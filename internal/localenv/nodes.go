package localenv

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/certferry/certferry/internal/spec"
)

// EC2Nodes resolves targets with EC2 DescribeInstances (running instances,
// tag filters), for the emulator, which lacks SSM's
// DescribeInstanceInformation. It sees EC2 instances only, never hybrid
// (mi-) nodes; the deployed sweeper uses fleet.Resolver.
type EC2Nodes struct{ API *ec2.Client }

// Resolve returns the running instances matching targets, sorted.
func (e EC2Nodes) Resolve(ctx context.Context, targets []spec.Target) ([]string, error) {
	filters := []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}
	for _, t := range targets {
		switch {
		case strings.HasPrefix(t.Key, "tag:"):
			filters = append(filters, ec2types.Filter{Name: aws.String(t.Key), Values: t.Values})
		case t.Key == "InstanceIds":
			filters = append(filters, ec2types.Filter{Name: aws.String("instance-id"), Values: t.Values})
		}
	}
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(e.API, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}
