//go:build integration

package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

// deleteBeforeRecord runs a whole DELETE of the name after the tracker read
// the deployment and before it writes the node's report: the tracker's
// read-then-write is not atomic, and a report delayed by transaction
// conflict retries can land after the DELETE.
type deleteBeforeRecord struct {
	*inventory.Store
	during func()
}

func (d *deleteBeforeRecord) RecordReport(ctx context.Context, ref inventory.CommandRef, prev *inventory.Node, r inventory.Report) error {
	if d.during != nil {
		d.during()
		d.during = nil
	}
	return d.Store.RecordReport(ctx, ref, prev, r)
}

// A node's report racing a DELETE of its name leaves nothing behind: no
// NODE or COUNT item of the deleted name (which would otherwise stay for
// ever, and show up under the name when it is bound again).
func TestReportRacingDeleteLeavesNothing(t *testing.T) {
	t.Parallel()
	r := newSSMRig(t)
	id, c := r.onboardOneLinuxNode()
	r.postResult(c.LastCommandID, id, testkit.NodeResult{Status: "Success",
		Stdout: resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")})
	store := &deleteBeforeRecord{Store: r.inv}
	store.during = func() {
		if status, ans := r.call("DELETE", "/certificates/shop-web", "shop-web", ""); status != 200 {
			t.Errorf("DELETE: %d %v", status, ans)
		}
	}
	r.tracker = tracker.New(store, ssm.NewFromConfig(r.aws), notify.NewPublisher(sns.NewFromConfig(r.aws), r.cfg.TopicARN), metrics.New(io.Discard),
		tracker.Config{Document: r.cfg.Document, ReadBackoff: time.Millisecond})
	out, err := r.handleStatus("tracker-invocation-success.json", c.LastCommandID, id)
	if out.Status == "recorded" {
		t.Errorf("the report of a deleted name was recorded: %+v", out)
	}
	if err != nil {
		// Lambda retries the event: the retry must find nothing to do.
		if out, err = r.handleStatus("tracker-invocation-success.json", c.LastCommandID, id); err != nil || out.Status != "ignored" {
			t.Errorf("retry: %+v, %v; want ignored", out, err)
		}
	}
	left, err := r.ddb.Query(r.ctx, &dynamodb.QueryInput{
		TableName: aws.String(r.cfg.Table), KeyConditionExpression: aws.String("PK = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: inventory.CertKey("shop-web")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range left.Items {
		// The DELETE's own AUDIT entry stays on purpose (inventory/audit.go).
		if sk, ok := it["SK"].(*ddbtypes.AttributeValueMemberS); ok && strings.HasPrefix(sk.Value, "AUDIT#") && strings.HasSuffix(sk.Value, "#delete") {
			continue
		}
		t.Errorf("item of the deleted name left behind: %v", it["SK"])
	}
}
