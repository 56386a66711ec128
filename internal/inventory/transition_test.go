package inventory

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The node-state rules, without DynamoDB: staleness, what a node keeps,
// consecutive failures and the counts a report moves.
func TestNextNode(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	ref := CommandRef{Name: "shop-web", CommandID: "cmd-2", DeploymentID: "2026-11-23T11:00:00.000Z#cmd-2"}
	older, newer := "2026-11-22T11:00:00.000Z#cmd-1", "2026-11-24T11:00:00.000Z#cmd-3"
	installed := Report{InstanceID: "i-1", State: NodeInstalled, Serial: "0c", Fingerprint: "AB"}
	failed := Report{InstanceID: "i-1", State: NodeFailed, Error: "config test failed"}
	rolledBack := Report{InstanceID: "i-1", State: NodeRolledBack, Error: "handshake served another certificate"}
	unverified := Report{InstanceID: "i-1", State: NodeInstalled, Serial: "0c", Fingerprint: "AB", Unverified: true}
	superseded := Report{InstanceID: "i-1", State: NodeSuperseded, Error: "superseded: the bundle holds AC but this command installs AB"}
	node := func(dep string, st NodeState, failures int) *Node {
		return &Node{InstanceID: "i-1", DeploymentID: dep, State: st, Serial: "0b", Fingerprint: "AA", Failures: failures,
			Error: "old error", UpdatedAt: earlier}
	}
	tests := []struct {
		name         string
		prev         *Node
		r            Report
		wantErr      error
		wantState    NodeState
		wantSerial   string
		wantFP       string
		wantFailures int
		wantDelta    CountsDelta
	}{
		{name: "first report, installed", r: installed,
			wantState: NodeInstalled, wantSerial: "0c", wantFP: "AB", wantDelta: CountsDelta{NodeInstalled: 1}},
		{name: "first report, failed", r: failed,
			wantState: NodeFailed, wantFailures: 1, wantDelta: CountsDelta{NodeFailed: 1}},
		{name: "pending in this deployment, installed", prev: node(ref.DeploymentID, NodePending, 2), r: installed,
			wantState: NodeInstalled, wantSerial: "0c", wantFP: "AB", wantDelta: CountsDelta{NodeInstalled: 1, NodePending: -1}},
		{name: "pending in this deployment, failed: failures carried on", prev: node(ref.DeploymentID, NodePending, 2), r: failed,
			wantState: NodeFailed, wantSerial: "0b", wantFP: "AA", wantFailures: 3, wantDelta: CountsDelta{NodeFailed: 1, NodePending: -1}},
		{name: "pending in this deployment, rolled back", prev: node(ref.DeploymentID, NodePending, 0), r: rolledBack,
			wantState: NodeRolledBack, wantSerial: "0b", wantFP: "AA", wantFailures: 1, wantDelta: CountsDelta{NodeRolledBack: 1, NodePending: -1}},
		{name: "unverified install counts as installed", prev: node(ref.DeploymentID, NodePending, 1), r: unverified,
			wantState: NodeInstalled, wantSerial: "0c", wantFP: "AB", wantDelta: CountsDelta{NodeInstalled: 1, NodePending: -1}},
		{name: "installed in an older deployment: not pending here", prev: node(older, NodeInstalled, 0), r: failed,
			wantState: NodeFailed, wantSerial: "0b", wantFP: "AA", wantFailures: 1, wantDelta: CountsDelta{NodeFailed: 1}},
		{name: "pending in an older deployment: not pending here", prev: node(older, NodePending, 1), r: installed,
			wantState: NodeInstalled, wantSerial: "0c", wantFP: "AB", wantDelta: CountsDelta{NodeInstalled: 1}},
		{name: "failed before, now installed: failures reset", prev: node(older, NodeFailed, 2), r: installed,
			wantState: NodeInstalled, wantSerial: "0c", wantFP: "AB", wantDelta: CountsDelta{NodeInstalled: 1}},
		{name: "duplicate of this deployment's final state", prev: node(ref.DeploymentID, NodeInstalled, 0), r: installed, wantErr: ErrStale},
		{name: "late failure after this deployment's install", prev: node(ref.DeploymentID, NodeInstalled, 0), r: failed, wantErr: ErrStale},
		{name: "node moved on to a newer deployment", prev: node(newer, NodePending, 0), r: installed, wantErr: ErrStale},
		{name: "pending in this deployment, superseded: holdings and failures kept", prev: node(ref.DeploymentID, NodePending, 2), r: superseded,
			wantState: NodeSuperseded, wantSerial: "0b", wantFP: "AA", wantFailures: 2, wantDelta: CountsDelta{NodeSuperseded: 1, NodePending: -1}},
		{name: "first report, superseded: nothing installed, no failure", r: superseded,
			wantState: NodeSuperseded, wantDelta: CountsDelta{NodeSuperseded: 1}},
		{name: "superseded after a failure: the failure count stays", prev: node(older, NodeFailed, 1), r: superseded,
			wantState: NodeSuperseded, wantSerial: "0b", wantFP: "AA", wantFailures: 1, wantDelta: CountsDelta{NodeSuperseded: 1}},
		{name: "duplicate superseded", prev: node(ref.DeploymentID, NodeSuperseded, 0), r: superseded, wantErr: ErrStale},
		{name: "superseded of an older deployment than the node's", prev: node(newer, NodePending, 0), r: superseded, wantErr: ErrStale},
		{name: "pending is not a report", prev: node(ref.DeploymentID, NodePending, 0), r: Report{InstanceID: "i-1", State: NodePending}},
		{name: "unknown state is not a report", r: Report{InstanceID: "i-1", State: "bogus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, delta, err := NextNode(tc.prev, ref, tc.r, now)
			if tc.wantState == "" {
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && (err == nil || !strings.Contains(err.Error(), "not a final node state")) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if delta != nil {
					t.Fatalf("delta %v on an error", delta)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.State != tc.wantState || n.Serial != tc.wantSerial || n.Fingerprint != tc.wantFP || n.Failures != tc.wantFailures {
				t.Errorf("node %s serial %q fingerprint %q failures %d, want %s %q %q %d",
					n.State, n.Serial, n.Fingerprint, n.Failures, tc.wantState, tc.wantSerial, tc.wantFP, tc.wantFailures)
			}
			if !maps.Equal(delta, tc.wantDelta) {
				t.Errorf("delta %v, want %v", delta, tc.wantDelta)
			}
			if n.PK != "CERT#shop-web" || n.SK != "NODE#i-1" || n.InstanceID != "i-1" || n.DeploymentID != ref.DeploymentID ||
				n.LastCommandID != ref.CommandID || !n.UpdatedAt.Equal(now) || n.Error != tc.r.Error || n.Unverified != tc.r.Unverified {
				t.Errorf("node %+v", n)
			}
		})
	}
}

// Items keep their stored form: times as RFC 3339 strings (whole seconds,
// UTC, "Z"), an unset finishedAt left out, counts keyed by state.
func TestItemFormat(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	item, err := marshalItem(&Deployment{ID: "d", Trigger: TriggerSweep, Outcome: OutcomeInProgress, CreatedAt: at,
		Counts: map[NodeState]int{NodePending: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if v := item["createdAt"].(*ddbtypes.AttributeValueMemberS).Value; v != "2026-11-23T12:00:00Z" {
		t.Errorf("createdAt %q", v)
	}
	if _, ok := item["finishedAt"]; ok {
		t.Errorf("finishedAt written while unset: %v", item["finishedAt"])
	}
	if item["trigger"].(*ddbtypes.AttributeValueMemberS).Value != "sweep" || item["outcome"].(*ddbtypes.AttributeValueMemberS).Value != "in_progress" {
		t.Errorf("trigger/outcome %v %v", item["trigger"], item["outcome"])
	}
	if c := item["counts"].(*ddbtypes.AttributeValueMemberM).Value["pending"].(*ddbtypes.AttributeValueMemberN).Value; c != "2" {
		t.Errorf("counts.pending %q", c)
	}
	var back Deployment
	if err := unmarshalItem(item, &back); err != nil || !back.CreatedAt.Equal(at) || FormatTime(back.CreatedAt) != "2026-11-23T12:00:00Z" ||
		!back.FinishedAt.IsZero() || FormatTime(back.FinishedAt) != "" {
		t.Errorf("decoded %+v, %v", back, err)
	}
}

// META's exportedAt is additive: an RFC 3339 string once certferry
// recorded an export, absent (and read as the zero time) on items written
// before it was recorded.
func TestCertExportedAtFormat(t *testing.T) {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Time
		want string // "" = attribute absent
	}{
		{"recorded", at, "2026-11-23T12:00:00Z"},
		{"not recorded", time.Time{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			item, err := marshalItem(&Cert{PK: "CERT#shop-web", SK: "META", Serial: "0c", Status: StatusActive, ExportedAt: tc.at})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if v, ok := item["exportedAt"]; ok {
				got = v.(*ddbtypes.AttributeValueMemberS).Value
			}
			if got != tc.want {
				t.Errorf("exportedAt %q, want %q (\"\" = absent)", got, tc.want)
			}
			var back Cert
			if err := unmarshalItem(item, &back); err != nil || !back.ExportedAt.Equal(tc.at) {
				t.Errorf("decoded exportedAt %v, %v; want %v", back.ExportedAt, err, tc.at)
			}
		})
	}
}

// A stored time that is not RFC 3339 fails the read, naming the item;
// before, it read as the zero time (an immediate retry, a deployment never
// stuck).
func TestBadStoredTime(t *testing.T) {
	bad := func(attr string) map[string]ddbtypes.AttributeValue {
		it, err := attributevalue.MarshalMap(map[string]string{"PK": "CERT#shop-web", "SK": "NODE#i-1", "state": "failed", attr: "yesterday"})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	api := &fakeReads{item: bad("updatedAt")}
	s := NewStore(api, "t")
	_, err := s.GetNode(context.Background(), "shop-web", "i-1")
	if err == nil || !strings.Contains(err.Error(), "decode node i-1 of shop-web") || !strings.Contains(err.Error(), `"yesterday" is not RFC 3339`) {
		t.Fatalf("GetNode: %v", err)
	}
	api.item = bad("createdAt")
	api.item["SK"] = &ddbtypes.AttributeValueMemberS{Value: "DEPLOY#d1"}
	_, err = s.Describe(context.Background(), "shop-web")
	if err == nil || !strings.Contains(err.Error(), "decode shop-web item DEPLOY#d1") {
		t.Fatalf("Describe: %v", err)
	}
	api.item["SK"] = &ddbtypes.AttributeValueMemberS{Value: "META"}
	_, err = s.ListCerts(context.Background())
	if err == nil || !strings.Contains(err.Error(), "decode certificate item CERT#shop-web / META") {
		t.Fatalf("ListCerts: %v", err)
	}
}

// A commit that could not fit one transaction is refused before any write
// (it cannot happen: at most 50 instance ids reach a commit).
func TestCommitTooManyNodes(t *testing.T) {
	s := NewStore(&fakeReads{}, "t")
	ids := make([]string, MaxCommitNodes+1)
	for i := range ids {
		ids[i] = "i-" + strings.Repeat("0", 16) + string(rune('a'+i%26))
	}
	_, err := s.Commit(context.Background(), &Cert{}, &Deployment{ID: "d", InstanceIDs: ids}, nil)
	if err == nil || !strings.Contains(err.Error(), "at most 81 fit one transaction") {
		t.Fatalf("err %v", err)
	}
}

// fakeReads answers every read with item; a write fails the test.
type fakeReads struct {
	dynamoAPI
	item map[string]ddbtypes.AttributeValue
}

func (f *fakeReads) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: f.item}, nil
}

func (f *fakeReads) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{Items: []map[string]ddbtypes.AttributeValue{f.item}}, nil
}

func (f *fakeReads) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return &dynamodb.ScanOutput{Items: []map[string]ddbtypes.AttributeValue{f.item}}, nil
}

// A report's delta becomes one ADD on the node's COUNT shard: the new state
// up, pending down when the node was pending in the deployment.
func TestCountUpdate(t *testing.T) {
	s := NewStore(&fakeReads{}, "t")
	tests := []struct {
		name     string
		delta    CountsDelta
		wantExpr string
		want     map[string]string // attribute → added number
	}{
		{"installed, was pending", CountsDelta{NodeInstalled: 1, NodePending: -1}, "ADD #n0 :v0, #n1 :v1 SET #dep = :dep, #expires = :expires",
			map[string]string{"pending": "-1", "installed": "1"}},
		{"rolled back, not pending here", CountsDelta{NodeRolledBack: 1}, "ADD #n3 :v3 SET #dep = :dep, #expires = :expires",
			map[string]string{"rolled_back": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := s.countUpdate("shop-web", "d1", "i-1", tc.delta, 42)
			if *u.UpdateExpression != tc.wantExpr || *u.ConditionExpression != "attribute_exists(PK)" {
				t.Fatalf("update %q condition %q", *u.UpdateExpression, *u.ConditionExpression)
			}
			got := map[string]string{}
			for ph, attr := range u.ExpressionAttributeNames {
				if strings.HasPrefix(ph, "#n") {
					got[attr] = u.ExpressionAttributeValues[":v"+ph[2:]].(*ddbtypes.AttributeValueMemberN).Value
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("adds %v, want %v", got, tc.want)
			}
		})
	}
}
