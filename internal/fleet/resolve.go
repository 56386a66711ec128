package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/spec"
)

type instanceInfoAPI interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

var _ instanceInfoAPI = (*ssm.Client)(nil)

// describePageSize is the largest page DescribeInstanceInformation serves
// (MaxResults 5–50, default 10: "DescribeInstanceInformation", Systems
// Manager API Reference).
const describePageSize = 50

// Resolver finds the managed nodes (EC2 i- and hybrid mi-) that a spec's
// targets match right now and that SSM Agent reports online.
type Resolver struct{ api instanceInfoAPI }

// NewResolver returns a Resolver on SSM's DescribeInstanceInformation.
func NewResolver(api instanceInfoAPI) *Resolver { return &Resolver{api: api} }

// Resolve returns the online managed nodes matching targets (tag targets
// are ANDed, values ORed, as SendCommand does), sorted.
//
// "DescribeInstanceInformation" (Systems Manager API Reference): "Tag
// filters can't be combined with other filter types", so tag targets are
// the only filters of their call and PingStatus is checked on the answer;
// instance ids go in an InstanceIds filter (a spec never mixes them with
// tags), and "if you specify a node ID that isn't valid or a node that you
// don't own, you receive an error": then each id is asked alone and the
// ones SSM does not manage are left out.
//
// Only Online nodes: a node whose agent lost its connection gets a command
// only when it reconnects, within the delivery timeout, or the invocation
// ends DeliveryTimedOut; the daily sweep sends to it once it is back.
func (r *Resolver) Resolve(ctx context.Context, targets []spec.Target) ([]string, error) {
	var tags []ssmtypes.InstanceInformationStringFilter
	var ids []string
	for _, t := range targets {
		if strings.EqualFold(t.Key, spec.TargetInstanceIDs) {
			ids = append(ids, t.Values...)
			continue
		}
		tags = append(tags, ssmtypes.InstanceInformationStringFilter{Key: aws.String(t.Key), Values: t.Values})
	}
	var online []string
	if len(tags) > 0 {
		found, err := r.online(ctx, tags)
		if err != nil {
			return nil, fmt.Errorf("describe managed nodes for %s: %w", describeTargets(targets), err)
		}
		online = found
	}
	for chunk := range slices.Chunk(ids, describePageSize) {
		found, err := r.online(ctx, []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}})
		if isCode(err, "InvalidInstanceId") {
			found, err = r.onlineEach(ctx, chunk)
		}
		if err != nil {
			return nil, fmt.Errorf("describe managed nodes for %s: %w", describeTargets(targets), err)
		}
		online = append(online, found...)
	}
	slices.Sort(online)
	return slices.Compact(online), nil
}

// online pages through the nodes filters match and keeps the Online ones.
func (r *Resolver) online(ctx context.Context, filters []ssmtypes.InstanceInformationStringFilter) ([]string, error) {
	var ids []string
	p := ssm.NewDescribeInstanceInformationPaginator(r.api, &ssm.DescribeInstanceInformationInput{Filters: filters, MaxResults: aws.Int32(describePageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, i := range page.InstanceInformationList {
			if i.PingStatus == ssmtypes.PingStatusOnline {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
	}
	return ids, nil
}

// onlineEach asks for each id alone, leaving out those SSM does not manage.
func (r *Resolver) onlineEach(ctx context.Context, ids []string) ([]string, error) {
	var online []string
	for _, id := range ids {
		found, err := r.online(ctx, []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}})
		if isCode(err, "InvalidInstanceId") {
			continue
		}
		if err != nil {
			return nil, err
		}
		online = append(online, found...)
	}
	return online, nil
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
