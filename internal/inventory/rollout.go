package inventory

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// rolloutSK is the sort key of a name's ROLLOUT item.
const rolloutSK = "ROLLOUT"

// RolloutPhase is a rollout's phase (issue 14's spelling).
type RolloutPhase string

// Rollout phases. Done and superseded are final; halted waits for a
// person (an explicit redeploy resumes it).
const (
	PhaseWaitingWindow    RolloutPhase = "waiting_window"
	PhaseAwaitingApproval RolloutPhase = "awaiting_approval"
	PhaseRolling          RolloutPhase = "rolling"
	PhasePaused           RolloutPhase = "paused"
	PhaseHalted           RolloutPhase = "halted"
	PhaseDone             RolloutPhase = "done"
	PhaseSuperseded       RolloutPhase = "superseded"
)

// Final reports whether the phase ends the rollout.
func (p RolloutPhase) Final() bool { return p == PhaseDone || p == PhaseSuperseded }

// Waiting reports whether the rollout waits for a gate (nothing sent yet).
func (p RolloutPhase) Waiting() bool { return p == PhaseWaitingWindow || p == PhaseAwaitingApproval }

// Rollout is the ROLLOUT item of a name: its current rollout (at most
// one), with its own version for optimistic locking (every write is
// conditional on the version read: PutRollout).
type Rollout struct {
	PK             string       `dynamodbav:"PK"`
	SK             string       `dynamodbav:"SK"`
	ID             string       `dynamodbav:"rolloutId"`
	Name           string       `dynamodbav:"name"`
	CertificateARN string       `dynamodbav:"certificateArn"`
	Serial         string       `dynamodbav:"serial"` // ACM's serial being rolled out
	Trigger        Trigger      `dynamodbav:"trigger"`
	Phase          RolloutPhase `dynamodbav:"phase"`
	// Waves are cumulative node counts (the last is len(Nodes)); empty for
	// a rollout without waves (one command to the targets once it goes).
	Waves []int `dynamodbav:"waves,omitempty"`
	// Nodes are the instance ids resolved when the rollout started, in
	// the order the waves take them.
	Nodes []string `dynamodbav:"nodes,omitempty"`
	// Dropped are nodes the rollout went on without: no longer managed by
	// SSM (terminated, deregistered) when their wave was sent, or no
	// longer online when a halted wave resumed (rollout.Engine).
	Dropped []string `dynamodbav:"dropped,omitempty"`
	// Wave is the 1-based wave last sent (0: none yet).
	Wave       int       `dynamodbav:"wave"`
	WaveSentAt time.Time `dynamodbav:"waveSentAt,omitempty"`
	// NotBefore is when a waiting rollout's window opens, or when a
	// paused one's pause ends.
	NotBefore time.Time `dynamodbav:"notBefore,omitempty"`
	// GoBy is the expiry override: the certificate on the nodes expires
	// within the safety margin from then on, and the rollout goes
	// whatever its gates say.
	GoBy       time.Time `dynamodbav:"goBy,omitempty"`
	Reason     string    `dynamodbav:"reason,omitempty"`
	ApprovedBy string    `dynamodbav:"approvedBy,omitempty"`
	ApprovedAt time.Time `dynamodbav:"approvedAt,omitempty"`
	RemindedAt time.Time `dynamodbav:"remindedAt,omitempty"`
	HaltedAt   time.Time `dynamodbav:"haltedAt,omitempty"`
	// OldNotAfter is when the certificate on the nodes (before this
	// rollout) expires: the sweep's risk for a halted rollout.
	OldNotAfter time.Time `dynamodbav:"oldNotAfter,omitempty"`
	Version     int64     `dynamodbav:"version"`
	CreatedAt   time.Time `dynamodbav:"createdAt"`
	UpdatedAt   time.Time `dynamodbav:"updatedAt"`
}

// WaveCount is the number of waves (0 for a rollout without waves).
func (r *Rollout) WaveCount() int { return len(r.Waves) }

// WaveNodes returns the nodes of wave k (1-based): those the cumulative
// count adds to the previous wave's.
func (r *Rollout) WaveNodes(k int) []string {
	if k < 1 || k > len(r.Waves) {
		return nil
	}
	from := 0
	if k > 1 {
		from = r.Waves[k-2]
	}
	return r.Nodes[from:r.Waves[k-1]]
}

// GetRollout returns name's ROLLOUT item, or nil.
func (s *Store) GetRollout(ctx context.Context, name string) (*Rollout, error) {
	return getItem[Rollout](ctx, s, CertKey(name), rolloutSK, "rollout of "+name)
}

// PutRollout writes r conditionally: when prevVersion is 0 the item must
// not exist, else it must still be at prevVersion. The written item (with
// its version one up and updatedAt now) is returned; ErrConflict when
// another writer won, which is how duplicate and late events and schedule
// deliveries change nothing twice.
func (s *Store) PutRollout(ctx context.Context, r Rollout, prevVersion int64) (*Rollout, error) {
	now := s.stamp()
	r.PK, r.SK, r.Version, r.UpdatedAt = CertKey(r.Name), rolloutSK, prevVersion+1, now
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	item, err := marshalItem(&r)
	if err != nil {
		return nil, fmt.Errorf("encode rollout of %s: %w", r.Name, err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}
	if prevVersion == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(PK)")
	} else {
		in.ConditionExpression = aws.String("#version = :version")
		in.ExpressionAttributeNames = map[string]string{"#version": "version"}
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":version": num(prevVersion)}
	}
	if _, err := s.api.PutItem(ctx, in); err != nil {
		return nil, conflictOr(err, "write rollout of "+r.Name)
	}
	return &r, nil
}
