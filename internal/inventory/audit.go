package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// AuditAction is what an operator did to a name.
type AuditAction string

// Audited actions (the spelling is stored and shown).
const (
	AuditApprove AuditAction = "approve"
	AuditRotate  AuditAction = "rotate"
	AuditRevoke  AuditAction = "revoke"
	AuditRebind  AuditAction = "rebind"
	AuditDelete  AuditAction = "delete"
)

// AuditRetention is how long an AUDIT item is kept before DynamoDB's TTL
// removes it: 400 days, a year of history with margin.
const AuditRetention = 400 * 24 * time.Hour

const auditPfx = "AUDIT#"

// AuditTimeFormat is the time in an AUDIT item's sort key: RFC 3339 in
// UTC with a fixed nine-digit fraction, so keys sort by time (RFC3339Nano
// drops trailing zeros, and "Z" sorts after ".").
const AuditTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// AuditEntry is an AUDIT item: who did what to a name, and when. Its SK
// is AUDIT#<at, AuditTimeFormat>#<action>, so a name's entries sort by
// time.
//
// AUDIT items outlive the name on purpose: DELETE /certificates/{name}
// removes META, DEPLOY, NODE and COUNT items but never AUDIT ones (they
// record the delete itself); DynamoDB's TTL removes them AuditRetention
// after they were written. Their attributes avoid the names the table's
// indexes key on (certificateArn, instanceId) and "name", so they never
// appear as a bound name or a node.
type AuditEntry struct {
	PK     string      `dynamodbav:"PK" json:"-"`
	SK     string      `dynamodbav:"SK" json:"-"`
	Action AuditAction `dynamodbav:"action" json:"action"`
	By     string      `dynamodbav:"by" json:"by"`
	At     time.Time   `dynamodbav:"at" json:"at"`
	// ARN is the certificate acted on (for rebind: the new one).
	ARN       string `dynamodbav:"arn,omitempty" json:"certificateArn,omitempty"`
	Detail    string `dynamodbav:"detail,omitempty" json:"detail,omitempty"`
	ExpiresAt int64  `dynamodbav:"expiresAt" json:"-"`
}

// Revocation is the at-risk mark on a name's META item: the certificate
// the name is bound to was revoked (through certferry or in ACM), so the
// nodes serve a certificate clients that check revocation reject. It
// stays until the name is rebound to another certificate.
type Revocation struct {
	CertificateARN string    `dynamodbav:"certificateArn" json:"certificateArn"`
	Serial         string    `dynamodbav:"serial,omitempty" json:"serial,omitempty"`
	Reason         string    `dynamodbav:"reason,omitempty" json:"reason,omitempty"`
	At             time.Time `dynamodbav:"at" json:"at"`
	By             string    `dynamodbav:"by" json:"by"`
}

// ErrNotBound reports a change to a name that is not (or no longer) bound
// to the certificate the change was for.
var ErrNotBound = errors.New("name is not bound to that certificate")

// Audit records e under name. Its time is e.At (the store's clock when
// zero), to the nanosecond; two entries of the same action at the same
// nanosecond are kept apart by moving the later one on by a nanosecond.
func (s *Store) Audit(ctx context.Context, name string, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.At = e.At.UTC()
	e.PK = CertKey(name)
	e.ExpiresAt = e.At.Add(AuditRetention).Unix()
	for attempt := 0; ; attempt++ {
		e.SK = auditPfx + e.At.Format(AuditTimeFormat) + "#" + string(e.Action)
		item, err := marshalItem(e)
		if err != nil {
			return fmt.Errorf("encode audit entry of %s: %w", name, err)
		}
		_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression: aws.String("attribute_not_exists(SK)"),
		})
		if err == nil {
			return nil
		}
		err = conflictOr(err, "record "+string(e.Action)+" of "+name)
		if errors.Is(err, ErrConflict) && attempt < 3 {
			e.At = e.At.Add(time.Nanosecond)
			continue
		}
		return err
	}
}

// AuditTrail returns up to limit entries of name, newest first. It reads
// entries of a deleted name too.
func (s *Store) AuditTrail(ctx context.Context, name string, limit int) ([]AuditEntry, error) {
	if limit < 1 || limit > MaxPageLimit {
		return nil, fmt.Errorf("audit limit %d: want 1 to %d", limit, MaxPageLimit)
	}
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :prefix)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pk": str(CertKey(name)), ":prefix": str(auditPfx),
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(int32(limit)),
		ConsistentRead:   aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit trail of %s: %w", name, err)
	}
	entries := make([]AuditEntry, 0, len(out.Items))
	for _, it := range out.Items {
		var e AuditEntry
		if err := unmarshalItem(it, &e); err != nil {
			return nil, fmt.Errorf("decode an audit entry of %s: %w", name, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// MarkRevoked marks name at risk with r, if name is still bound to
// r.CertificateARN and not marked for it already. It reports whether this
// call set the mark (false: already marked, or the name moved on or is
// gone). The META version moves on, so a deployment that read the item
// before cannot commit over the mark.
func (s *Store) MarkRevoked(ctx context.Context, name string, r Revocation) (bool, error) {
	r.At = r.At.UTC()
	rv, err := marshalItem(r)
	if err != nil {
		return false, fmt.Errorf("encode revocation of %s: %w", name, err)
	}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(CertKey(name), metaSK),
		UpdateExpression: aws.String("SET #revoked = :r, #version = #version + :one, #updatedAt = :now"),
		ConditionExpression: aws.String("#arn = :arn AND #status <> :deleting AND " +
			"(attribute_not_exists(#revoked) OR #revoked.#arn <> :arn)"),
		ExpressionAttributeNames: map[string]string{
			"#revoked": "revoked", "#version": "version", "#updatedAt": "updatedAt", "#arn": "certificateArn", "#status": "status",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":r": &ddbtypes.AttributeValueMemberM{Value: rv}, ":one": num(1), ":now": str(FormatTime(s.stamp())),
			":arn": str(r.CertificateARN), ":deleting": str(string(StatusDeleting)),
		},
	})
	if err == nil {
		return true, nil
	}
	if err = conflictOr(err, "mark "+name+" revoked"); errors.Is(err, ErrConflict) {
		return false, nil
	}
	return false, err
}

// Rebind moves name from c's certificate to arn and clears its at-risk
// mark, if META is still at the version read and no deployment holds a
// live claim (ErrConflict otherwise). It returns the item as written.
func (s *Store) Rebind(ctx context.Context, c *Cert, arn string) (*Cert, error) {
	now := s.stamp()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(c.PK, metaSK),
		UpdateExpression: aws.String("SET #arn = :arn, #version = #version + :one, #updatedAt = :now REMOVE #revoked"),
		ConditionExpression: aws.String("#version = :version AND #arn = :old AND " +
			"(attribute_not_exists(#claim) OR #claim.#until < :epoch)"),
		ExpressionAttributeNames: map[string]string{
			"#arn": "certificateArn", "#version": "version", "#updatedAt": "updatedAt", "#revoked": "revoked",
			"#claim": "claim", "#until": "until",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":arn": str(arn), ":one": num(1), ":now": str(FormatTime(now)), ":version": num(c.Version),
			":old": str(c.CertificateARN), ":epoch": num(s.now().Unix()),
		},
	})
	if err != nil {
		return nil, conflictOr(err, "rebind "+c.Name)
	}
	next := *c
	next.CertificateARN, next.Revoked, next.Version, next.UpdatedAt = arn, nil, c.Version+1, now
	return &next, nil
}
