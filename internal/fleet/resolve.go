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
	online, _, err := r.each(ctx, ids)
	return online, err
}

// each asks for each id alone: the Online ones, and the ones SSM does not
// manage (InvalidInstanceId for the id alone). Any other error (a
// throttled call) is an error, never a node gone.
func (r *Resolver) each(ctx context.Context, ids []string) (online, unmanaged []string, err error) {
	for _, id := range ids {
		found, err := r.online(ctx, []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}})
		if isCode(err, "InvalidInstanceId") {
			unmanaged = append(unmanaged, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		online = append(online, found...)
	}
	return online, unmanaged, nil
}

// Unmanaged returns the ids, in their order, that SSM no longer manages
// (a terminated instance, a deregistered hybrid node): those
// DescribeInstanceInformation refuses with InvalidInstanceId when asked
// alone, as Resolve leaves them out. The ids go first in calls of 50; only
// a call SSM refuses is asked again one id at a time. A node SSM still
// manages counts whatever its PingStatus (a stopped instance is a valid
// target of SendCommand: "InvalidInstanceId", Systems Manager API
// Reference). Any other error (throttling) is returned, never taken for
// a node gone.
func (r *Resolver) Unmanaged(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for chunk := range slices.Chunk(ids, describePageSize) {
		_, err := r.online(ctx, []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}})
		if err == nil {
			continue
		}
		if !isCode(err, "InvalidInstanceId") {
			return nil, fmt.Errorf("describe managed nodes %s: %w", strings.Join(chunk, ", "), err)
		}
		_, gone, err := r.each(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("describe managed nodes one by one: %w", err)
		}
		out = append(out, gone...)
	}
	return out, nil
}

// IsNotManaged tells whether err is SSM refusing instance ids with
// InvalidInstanceId (a SendCommand by InstanceIds: Send wraps it as
// ErrInstancesRefused). Throttling and every other error are not.
func IsNotManaged(err error) bool { return isCode(err, "InvalidInstanceId") }

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
