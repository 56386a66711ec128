// Package inventory is certferry's DynamoDB table: one META item per
// certificate name, a DEPLOY item per deployment, a NODE item per node and
// EVENT dedupe markers. META carries a version number; every change to it is
// conditional on the version read (optimistic locking).
//
// The package owns the table's vocabulary (vocab.go): node states,
// deployment outcomes, certificate statuses, deployment triggers and event
// marker states are named string types here, because this is the package
// that persists them, and every package that speaks them (events, pipeline,
// tracker, sweeper, api) can import it without a cycle: inventory imports
// nothing of certferry's but spec. How a node report changes a node is a
// pure function, NextNode (transition.go), which the DynamoDB writes apply.
//
// Times are time.Time in every item type; in the table they are RFC 3339
// strings (FormatTime). A stored time that does not parse fails the read of
// its item, with the item named, rather than reading as the zero time.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/certferry/certferry/internal/spec"
)

// ErrConflict reports a lost optimistic-lock race or an item that already
// exists: somebody else changed the certificate since it was read.
var ErrConflict = errors.New("inventory item changed concurrently")

// Index and key names, shared with template.yaml and `certferry local up`.
const (
	ARNIndex  = "certificateArn-index"
	metaSK    = "META"
	certPK    = "CERT#"
	deployPfx = "DEPLOY#"
	nodePfx   = "NODE#"
)

// TTLAttribute holds the expiry (epoch seconds) of EVENT dedupe markers,
// COMMAND references and finished DEPLOY items (template.yaml's
// TimeToLiveSpecification).
const TTLAttribute = "expiresAt"

// Claim marks a deployment in progress for one serial. It expires, so a
// crashed run never blocks the next one for longer than the lease.
type Claim struct {
	Token  string `dynamodbav:"token"`
	Serial string `dynamodbav:"serial"`
	Until  int64  `dynamodbav:"until"`
}

// Cert is the META item of a certificate name.
type Cert struct {
	PK string `dynamodbav:"PK"`
	SK string `dynamodbav:"SK"`
	spec.Spec
	SecretARN        string     `dynamodbav:"secretArn,omitempty"`
	SecretVersionID  string     `dynamodbav:"secretVersionId,omitempty"`
	Serial           string     `dynamodbav:"serial,omitempty"`
	Fingerprint      string     `dynamodbav:"fingerprintSha256,omitempty"`
	NotAfter         time.Time  `dynamodbav:"notAfter,omitempty"`
	DomainName       string     `dynamodbav:"domainName,omitempty"`
	Status           CertStatus `dynamodbav:"status"`
	LastDeploymentID string     `dynamodbav:"lastDeploymentId,omitempty"`
	LastCommandID    string     `dynamodbav:"lastCommandId,omitempty"`
	Version          int64      `dynamodbav:"version"`
	CreatedAt        time.Time  `dynamodbav:"createdAt"`
	UpdatedAt        time.Time  `dynamodbav:"updatedAt"`
	Claim            *Claim     `dynamodbav:"claim,omitempty"`
	// PendingSend is the command a run is sending, until its commit (send.go).
	PendingSend *PendingSend `dynamodbav:"pendingSend,omitempty"`
	// ExportedAt is when certferry exported Serial from ACM (the stored
	// bundle's exportedAt). ACM counts an exportable certificate ELIGIBLE
	// for managed renewal only once it was exported since it was issued or
	// last renewed; the sweep reads this to tell a fresh INELIGIBLE from a
	// lasting one. Zero on items written before it was recorded.
	ExportedAt time.Time `dynamodbav:"exportedAt,omitempty"`
	// Revoked marks the name at risk: its certificate was revoked
	// (audit.go). Rebind clears it.
	Revoked *Revocation `dynamodbav:"revoked,omitempty"`
}

// DeploymentTimeFormat starts deployment ids: RFC 3339 in UTC with fixed
// millisecond precision, so DEPLOY sort keys sort by time even within a
// second.
const DeploymentTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Deployment is a DEPLOY item: one SendCommand for one serial.
type Deployment struct {
	PK              string            `dynamodbav:"PK"`
	SK              string            `dynamodbav:"SK"`
	ID              string            `dynamodbav:"deploymentId"`
	Name            string            `dynamodbav:"name"`
	CommandID       string            `dynamodbav:"commandId"`
	Trigger         Trigger           `dynamodbav:"trigger"`
	Serial          string            `dynamodbav:"serial"`
	Fingerprint     string            `dynamodbav:"fingerprintSha256"`
	SecretVersionID string            `dynamodbav:"secretVersionId"`
	InstanceIDs     []string          `dynamodbav:"instanceIds,omitempty"`
	Counts          map[NodeState]int `dynamodbav:"counts"`
	Outcome         Outcome           `dynamodbav:"outcome"`
	CreatedAt       time.Time         `dynamodbav:"createdAt"`
	// Expected is the number of nodes SSM targeted, known once the command
	// finished; CommandStatus is SSM's final status of the command.
	Expected      int       `dynamodbav:"expected,omitempty"`
	CommandStatus string    `dynamodbav:"commandStatus,omitempty"`
	FinishedAt    time.Time `dynamodbav:"finishedAt,omitempty"`
	// ExpiresAt (epoch seconds) is set when the deployment finishes:
	// DynamoDB's TTL removes the item DeployRetention later.
	ExpiresAt int64 `dynamodbav:"expiresAt,omitempty"`
	// RolloutID, Wave (1-based) and Waves (the rollout's wave count) link
	// a deployment to the wave of a rollout it sends; empty and 0 for a
	// deployment that is not part of a waved rollout.
	RolloutID string `dynamodbav:"rolloutId,omitempty"`
	Wave      int    `dynamodbav:"wave,omitempty"`
	Waves     int    `dynamodbav:"waves,omitempty"`
	// Dropped are instance ids of the name's targets the deployment went
	// on without: SSM no longer manages them (terminated, deregistered),
	// as a rollout records its own (Rollout.Dropped). The deployment's
	// finish alert names them once.
	Dropped []string `dynamodbav:"dropped,omitempty"`
}

// Reported returns how many nodes of the deployment reported an install
// and how many a failure (failed or rolled back).
func (d *Deployment) Reported() (installed, failed int) {
	return d.Counts[NodeInstalled], d.Counts[NodeFailed] + d.Counts[NodeRolledBack]
}

// Node is a NODE item: what one node has.
type Node struct {
	PK            string `dynamodbav:"PK"`
	SK            string `dynamodbav:"SK"`
	InstanceID    string `dynamodbav:"instanceId"`
	Serial        string `dynamodbav:"serial,omitempty"`
	Fingerprint   string `dynamodbav:"fingerprintSha256,omitempty"`
	LastCommandID string `dynamodbav:"lastCommandId,omitempty"`
	// DeploymentID is the deployment that last targeted the node; events of
	// older deployments never overwrite a newer one's state.
	DeploymentID string    `dynamodbav:"deploymentId,omitempty"`
	State        NodeState `dynamodbav:"state"`
	Error        string    `dynamodbav:"error,omitempty"`
	// Unverified is set when SSM reported Success but no CERTFERRY_RESULT
	// line could be read; the sweep sends the install again.
	Unverified bool `dynamodbav:"unverified,omitempty"`
	// Failures counts consecutive failed installs of the current serial.
	Failures  int       `dynamodbav:"failures,omitempty"`
	UpdatedAt time.Time `dynamodbav:"updatedAt"`
}

type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ dynamoAPI = (*dynamodb.Client)(nil)

// Store reads and writes the inventory table.
type Store struct {
	api   dynamoAPI
	table string
	now   func() time.Time
	// Conflicts bounds the retries of transaction conflicts (conflicts.go).
	Conflicts ConflictRetry
	// DeployRetention is how long a finished DEPLOY item is kept before
	// DynamoDB's TTL removes it (tracking.go).
	DeployRetention time.Duration
}

// DefaultDeployRetention keeps finished deployments 90 days.
const DefaultDeployRetention = 90 * 24 * time.Hour

// NewStore returns a Store on table. Its writes retry transaction
// conflicts (DefaultConflictRetry).
func NewStore(api dynamoAPI, table string) *Store {
	s := &Store{table: table, now: time.Now, Conflicts: DefaultConflictRetry, DeployRetention: DefaultDeployRetention}
	s.api = conflictRetrier{dynamoAPI: api, policy: &s.Conflicts}
	return s
}

// CertKey is the partition key of a certificate name.
func CertKey(name string) string { return certPK + name }

func key(pk, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"PK": &ddbtypes.AttributeValueMemberS{Value: pk},
		"SK": &ddbtypes.AttributeValueMemberS{Value: sk},
	}
}

// getItem reads one item (consistently) into a T; nil when absent.
func getItem[T any](ctx context.Context, s *Store, pk, sk, what string) (*T, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var v T
	if err := unmarshalItem(out.Item, &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return &v, nil
}

// stamp is the time of a write as the store records it: UTC, whole
// seconds (so FormatTime gives "2026-11-23T12:00:00Z").
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Second) }

// marshalItem encodes an item: times as FormatTime does, a zero time of an
// omitempty field left out.
func marshalItem(v any) (map[string]ddbtypes.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) { o.OmitEmptyTime = true })
}

// GetCert returns the META item of name, or nil when there is none.
func (s *Store) GetCert(ctx context.Context, name string) (*Cert, error) {
	return getItem[Cert](ctx, s, CertKey(name), metaSK, "certificate "+name)
}

// CreateCert stores a new META item holding claim; ErrConflict when the name
// exists already.
func (s *Store) CreateCert(ctx context.Context, sp spec.Spec, claim Claim) (*Cert, error) {
	now := s.stamp()
	c := &Cert{
		PK: CertKey(sp.Name), SK: metaSK, Spec: sp, Status: StatusOnboarding,
		Version: 1, CreatedAt: now, UpdatedAt: now, Claim: &claim,
	}
	item, err := marshalItem(c)
	if err != nil {
		return nil, fmt.Errorf("encode certificate %s: %w", sp.Name, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	if err != nil {
		return nil, conflictOr(err, "create certificate "+sp.Name)
	}
	return c, nil
}

// TakeClaim sets claim on c if c is still at the version read, and returns
// the updated item.
func (s *Store) TakeClaim(ctx context.Context, c *Cert, claim Claim) (*Cert, error) {
	cl, err := attributevalue.Marshal(claim)
	if err != nil {
		return nil, fmt.Errorf("encode claim for %s: %w", c.Name, err)
	}
	now := s.stamp()
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(c.PK, metaSK),
		UpdateExpression:    aws.String("SET #claim = :claim, #version = #version + :one, #updatedAt = :now"),
		ConditionExpression: aws.String("#version = :version"),
		ExpressionAttributeNames: map[string]string{
			"#claim": "claim", "#version": "version", "#updatedAt": "updatedAt",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":claim": cl, ":one": num(1), ":version": num(c.Version), ":now": str(FormatTime(now)),
		},
	})
	if err != nil {
		return nil, conflictOr(err, "claim certificate "+c.Name)
	}
	next := *c
	next.Claim, next.Version, next.UpdatedAt = &claim, c.Version+1, now
	return &next, nil
}

// ReleaseClaim removes the claim whose token is token, if it is still there.
// A claim already taken over or committed is left alone.
func (s *Store) ReleaseClaim(ctx context.Context, name, token string) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(CertKey(name), metaSK),
		UpdateExpression:    aws.String("REMOVE #claim SET #version = #version + :one"),
		ConditionExpression: aws.String("#claim.#token = :token"),
		ExpressionAttributeNames: map[string]string{
			"#claim": "claim", "#token": "token", "#version": "version",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": num(1), ":token": str(token)},
	})
	if err != nil && !errors.Is(conflictOr(err, ""), ErrConflict) {
		return fmt.Errorf("release claim on %s: %w", name, err)
	}
	return nil
}

// MaxCommitNodes is how many pending NODE items a commit can write: a
// DynamoDB transaction holds at most 100 items ("Amazon DynamoDB
// quotas": TransactWriteItems), of which META, DEPLOY, the COMMAND
// reference and the CountShards COUNT items take 19. A deployment lists
// its nodes only when it targets instance ids, at most 50 of them (SSM's
// limit, spec.ValidateTargets and Pipeline.Resend), so every commit fits.
const MaxCommitNodes = 100 - 3 - CountShards

// Commit records a finished deployment in one transaction: META takes the
// new spec, serial, fingerprint and secret version (conditional on the
// version read and on holding the claim), the DEPLOY item is created, and
// a pending NODE item is written for every instance the command resolved.
// failures carries the consecutive failures of nodes the deployment sends
// the install to again (the sweep's resend), so that their retries stay
// bounded; nodes it does not name start at 0.
func (s *Store) Commit(ctx context.Context, c *Cert, d *Deployment, failures map[string]int) (*Cert, error) {
	if len(d.InstanceIDs) > MaxCommitNodes {
		return nil, fmt.Errorf("commit deployment of %s: %d nodes, at most %d fit one transaction", c.Name, len(d.InstanceIDs), MaxCommitNodes)
	}
	now := s.stamp()
	next := *c
	next.Status, next.UpdatedAt, next.Version, next.Claim = StatusActive, now, c.Version+1, nil
	next.LastDeploymentID, next.LastCommandID = d.ID, d.CommandID
	meta, err := marshalItem(&next)
	if err != nil {
		return nil, fmt.Errorf("encode certificate %s: %w", c.Name, err)
	}
	d.PK, d.SK, d.Name, d.CreatedAt = c.PK, deployPfx+d.ID, c.Name, now
	dep, err := marshalItem(d)
	if err != nil {
		return nil, fmt.Errorf("encode deployment %s: %w", d.ID, err)
	}
	items := []ddbtypes.TransactWriteItem{
		{Put: &ddbtypes.Put{
			TableName: aws.String(s.table), Item: meta,
			ConditionExpression:       aws.String("#version = :version"),
			ExpressionAttributeNames:  map[string]string{"#version": "version"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":version": num(c.Version)},
		}},
		{Put: &ddbtypes.Put{
			TableName: aws.String(s.table), Item: dep,
			ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}},
	}
	ref, err := attributevalue.MarshalMap(CommandRef{
		PK: commandPK + d.CommandID, SK: commandSK, CommandID: d.CommandID, Name: c.Name, DeploymentID: d.ID,
		ExpiresAt: s.now().Add(KeepCommandRefs).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode command reference %s: %w", d.CommandID, err)
	}
	items = append(items, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String(s.table), Item: ref}})
	shards, err := s.shardPuts(c.Name, d.ID, s.now().Add(s.retention()+KeepCommandRefs).Unix())
	if err != nil {
		return nil, err
	}
	items = append(items, shards...)
	for _, id := range d.InstanceIDs {
		items = append(items, ddbtypes.TransactWriteItem{Update: s.pendingNode(c.PK, id, d, failures[id], now)})
	}
	if _, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return nil, conflictOr(err, "commit deployment of "+c.Name)
	}
	return &next, nil
}

// pendingNode marks a node pending for deployment d. What the node has
// installed (serial, fingerprint) stays until the tracker hears back.
func (s *Store) pendingNode(pk, id string, d *Deployment, failures int, now time.Time) *ddbtypes.Update {
	return &ddbtypes.Update{
		TableName: aws.String(s.table), Key: key(pk, nodePfx+id),
		UpdateExpression: aws.String("SET instanceId = :id, lastCommandId = :cmd, deploymentId = :dep, #state = :pending, " +
			"failures = :failures, updatedAt = :now REMOVE #error, unverified"),
		ExpressionAttributeNames: map[string]string{"#state": "state", "#error": "error"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":id": str(id), ":cmd": str(d.CommandID), ":dep": str(d.ID), ":pending": str(string(NodePending)),
			":failures": num(int64(failures)), ":now": str(FormatTime(now)),
		},
	}
}

// Detail is everything stored under one certificate name.
type Detail struct {
	Cert        *Cert
	Deployments []Deployment // oldest first, counts with their shards' added
	Nodes       []Node
	Rollout     *Rollout                             // the name's current rollout, if any
	shardKeys   []map[string]ddbtypes.AttributeValue // COUNT items (counts.go)
}

// NodesByID returns the nodes keyed by instance id.
func (d *Detail) NodesByID() map[string]Node {
	m := make(map[string]Node, len(d.Nodes))
	for _, n := range d.Nodes {
		m[n.InstanceID] = n
	}
	return m
}

// Describe reads every item of name; nil Cert when the name is unknown.
func (s *Store) Describe(ctx context.Context, name string) (*Detail, error) {
	items, err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": str(CertKey(name))},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", name, err)
	}
	d := &Detail{}
	shards := map[string]map[NodeState]int{}
	for _, it := range items {
		sk := it["SK"].(*ddbtypes.AttributeValueMemberS).Value
		switch {
		case isCountShard(sk):
			var dep string
			var counts map[NodeState]int
			dep, counts, err = shardCounts(it)
			if shards[dep] == nil {
				shards[dep] = map[NodeState]int{}
			}
			for st, n := range counts {
				shards[dep][st] += n
			}
			d.shardKeys = append(d.shardKeys, key(CertKey(name), sk))
		case sk == metaSK:
			d.Cert = &Cert{}
			err = unmarshalItem(it, d.Cert)
		case sk == rolloutSK:
			d.Rollout = &Rollout{}
			err = unmarshalItem(it, d.Rollout)
		case strings.HasPrefix(sk, deployPfx):
			var dep Deployment
			err = unmarshalItem(it, &dep)
			d.Deployments = append(d.Deployments, dep)
		case strings.HasPrefix(sk, nodePfx):
			var n Node
			err = unmarshalItem(it, &n)
			d.Nodes = append(d.Nodes, n)
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s item %s: %w", name, sk, err)
		}
	}
	for i := range d.Deployments {
		addCounts(&d.Deployments[i], shards[d.Deployments[i].ID])
	}
	return d, nil
}

// ListCerts returns every META item, following pagination.
func (s *Store) ListCerts(ctx context.Context) ([]Cert, error) {
	var out []Cert
	p := dynamodb.NewScanPaginator(s.api, &dynamodb.ScanInput{
		TableName:                 aws.String(s.table),
		FilterExpression:          aws.String("SK = :meta"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":meta": str(metaSK)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		for _, it := range page.Items {
			var c Cert
			if err := unmarshalItem(it, &c); err != nil {
				return nil, fmt.Errorf("decode certificate item %s: %w", itemPK(it), err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// NamesByARN returns every name bound to a certificate ARN (GSI query).
func (s *Store) NamesByARN(ctx context.Context, arn string) ([]string, error) {
	items, err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(ARNIndex),
		KeyConditionExpression:    aws.String("certificateArn = :arn"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":arn": str(arn)},
	})
	if err != nil {
		return nil, fmt.Errorf("find names for %s: %w", arn, err)
	}
	var names []string
	for _, it := range items {
		if n, ok := it["name"].(*ddbtypes.AttributeValueMemberS); ok {
			names = append(names, n.Value)
		}
	}
	return names, nil
}

// DeleteCert removes every item of name (META first, so the name stops being
// distributed even if the rest is interrupted). Reports false when the name
// was unknown.
func (s *Store) DeleteCert(ctx context.Context, name string) (bool, error) {
	d, err := s.Describe(ctx, name)
	if err != nil {
		return false, err
	}
	if d.Cert == nil {
		return false, nil
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(CertKey(name), metaSK),
		UpdateExpression:    aws.String("SET #status = :deleting, #version = #version + :one REMOVE certificateArn"),
		ConditionExpression: aws.String("#version = :version"),
		ExpressionAttributeNames: map[string]string{
			"#status": "status", "#version": "version",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":deleting": str(string(StatusDeleting)), ":one": num(1), ":version": num(d.Cert.Version),
		},
	})
	if err != nil {
		return false, conflictOr(err, "delete certificate "+name)
	}
	// The COUNT shards go first: a node report adds to its shard only
	// while it exists (counts.go), so once they are gone no report can
	// write under the name, and the items read next are all there is.
	if err := s.batchDelete(ctx, d.shardKeys); err != nil {
		return false, fmt.Errorf("delete certificate %s: %w", name, err)
	}
	if d, err = s.Describe(ctx, name); err != nil {
		return false, err
	}
	if d.Cert == nil {
		return true, nil
	}
	var keys []map[string]ddbtypes.AttributeValue
	for _, dep := range d.Deployments {
		keys = append(keys, key(dep.PK, dep.SK), key(commandPK+dep.CommandID, commandSK))
	}
	for _, n := range d.Nodes {
		keys = append(keys, key(n.PK, n.SK))
	}
	keys = append(keys, d.shardKeys...)
	if d.Rollout != nil {
		keys = append(keys, key(CertKey(name), rolloutSK))
	}
	keys = append(keys, key(CertKey(name), metaSK))
	if err := s.batchDelete(ctx, keys); err != nil {
		return false, fmt.Errorf("delete certificate %s: %w", name, err)
	}
	return true, nil
}

func (s *Store) batchDelete(ctx context.Context, keys []map[string]ddbtypes.AttributeValue) error {
	for len(keys) > 0 {
		n := min(25, len(keys))
		reqs := make([]ddbtypes.WriteRequest, 0, n)
		for _, k := range keys[:n] {
			reqs = append(reqs, ddbtypes.WriteRequest{DeleteRequest: &ddbtypes.DeleteRequest{Key: k}})
		}
		keys = keys[n:]
		pending := map[string][]ddbtypes.WriteRequest{s.table: reqs}
		for attempt := 0; len(pending[s.table]) > 0; attempt++ {
			if attempt == 8 {
				return fmt.Errorf("batch delete: %d items still unprocessed", len(pending[s.table]))
			}
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
				}
			}
			out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("batch delete: %w", err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput) ([]map[string]ddbtypes.AttributeValue, error) {
	var items []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewQueryPaginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// conflictOr maps DynamoDB's condition failures (plain or inside a cancelled
// transaction) to ErrConflict, and wraps anything else with action.
func conflictOr(err error, action string) error {
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%s: %w", action, ErrConflict)
	}
	var tce *ddbtypes.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return fmt.Errorf("%s: %w", action, ErrConflict)
			}
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}

// unmarshalItem decodes an item; a time that is not RFC 3339 is an error.
func unmarshalItem(item map[string]ddbtypes.AttributeValue, v any) error {
	return attributevalue.UnmarshalMapWithOptions(item, v, func(o *attributevalue.DecoderOptions) {
		o.DecodeTime.S = func(s string) (time.Time, error) {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return time.Time{}, fmt.Errorf("time %q is not RFC 3339", s)
			}
			return t, nil
		}
	})
}

// itemPK names an item in an error: its PK and SK.
func itemPK(item map[string]ddbtypes.AttributeValue) string {
	var k pageKey
	_ = attributevalue.UnmarshalMap(item, &k)
	return k.PK + " / " + k.SK
}

func num(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

func str(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

const eventPK, eventSK = "EVENT#", "EVENT"

// EventMark is an EVENT item: the record that an EventBridge event is being
// or has been acted upon, kept until expiresAt (DynamoDB TTL).
type EventMark struct {
	PK        string     `dynamodbav:"PK"`
	SK        string     `dynamodbav:"SK"`
	EventID   string     `dynamodbav:"eventId"`
	Kind      string     `dynamodbav:"kind"`
	State     EventState `dynamodbav:"state"`
	Until     int64      `dynamodbav:"until"` // a processing mark is void after this (epoch seconds)
	ExpiresAt int64      `dynamodbav:"expiresAt"`
	CreatedAt time.Time  `dynamodbav:"createdAt"`
}

// MarkEvent records that the caller acts on event id now. It fails with
// ErrConflict when the event is done, or being processed by a run whose
// lease (until) has not run out: a redelivered event does nothing. The mark
// stays for keep, then DynamoDB's TTL removes it.
func (s *Store) MarkEvent(ctx context.Context, id, kind string, until time.Time, keep time.Duration) error {
	now := s.now()
	m := EventMark{
		PK: eventPK + id, SK: eventSK, EventID: id, Kind: kind, State: EventProcessing,
		Until: until.Unix(), ExpiresAt: now.Add(keep).Unix(), CreatedAt: now.UTC().Truncate(time.Second),
	}
	item, err := marshalItem(m)
	if err != nil {
		return fmt.Errorf("encode event mark %s: %w", id, err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:      aws.String("attribute_not_exists(PK) OR (#state = :processing AND #until < :now)"),
		ExpressionAttributeNames: map[string]string{"#state": "state", "#until": "until"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":processing": str(string(EventProcessing)), ":now": num(now.Unix()),
		},
	})
	if err != nil {
		return conflictOr(err, "mark event "+id)
	}
	return nil
}

// FinishEvent marks event id done.
func (s *Store) FinishEvent(ctx context.Context, id string) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(eventPK+id, eventSK),
		UpdateExpression:          aws.String("SET #state = :done"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":done": str(string(EventDone))},
	})
	if err != nil {
		return conflictOr(err, "finish event "+id)
	}
	return nil
}

// ReleaseEvent removes the processing mark of event id, so a retry of the
// event acts again. A done mark is left alone.
func (s *Store) ReleaseEvent(ctx context.Context, id string) error {
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: key(eventPK+id, eventSK),
		ConditionExpression:       aws.String("#state = :processing"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":processing": str(string(EventProcessing))},
	})
	if err != nil && !errors.Is(conflictOr(err, ""), ErrConflict) {
		return fmt.Errorf("release event %s: %w", id, err)
	}
	return nil
}

// GetEvent returns the mark of event id, or nil.
func (s *Store) GetEvent(ctx context.Context, id string) (*EventMark, error) {
	return getItem[EventMark](ctx, s, eventPK+id, eventSK, "event mark "+id)
}
