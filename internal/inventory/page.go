package inventory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Page sizes of GET /certificates/{name}. A node or deployment answers in
// well under 1 KB, so a page stays far below Lambda's 6 MB response limit
// ("Lambda quotas": invocation payload, synchronous, 6 MB).
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 500
	maxTokenLength   = 2048 // DynamoDB keys: PK up to 2048 bytes, SK up to 1024
)

// ErrBadToken marks a paging token certferry did not issue for this name.
var ErrBadToken = errors.New("invalid paging token")

// Page is one page of a name's deployments (oldest first) and then its
// nodes (by instance id), with the certificate's META item.
type Page struct {
	Cert        *Cert
	Deployments []Deployment
	Nodes       []Node
	// Rollout is the name's current rollout (first page only), or nil.
	Rollout *Rollout
	// Next continues after this page; empty on the last one.
	Next string
}

// pageKey is a DynamoDB LastEvaluatedKey of a name's partition.
type pageKey struct {
	PK string `json:"PK"`
	SK string `json:"SK"`
}

// encodeToken is the opaque token: base64url of the LastEvaluatedKey.
func encodeToken(k pageKey) string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

// readToken decodes a paging token (base64url of a JSON key with exactly
// k's fields) into k; anything else is ErrBadToken.
func readToken(token string, k any) error {
	if len(token) > maxTokenLength {
		return fmt.Errorf("%w: longer than %d characters", ErrBadToken, maxTokenLength)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return fmt.Errorf("%w: not base64url", ErrBadToken)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(k); err != nil {
		return fmt.Errorf("%w: not a paging key", ErrBadToken)
	}
	return nil
}

// decodeToken reads a token and checks it continues name's deployments or
// nodes.
func decodeToken(name, token string) (pageKey, error) {
	var k pageKey
	if err := readToken(token, &k); err != nil {
		return k, err
	}
	if k.PK != CertKey(name) || !(strings.HasPrefix(k.SK, deployPfx) || strings.HasPrefix(k.SK, nodePfx)) || len(k.SK) > 1024 {
		return k, fmt.Errorf("%w: not a page of %s", ErrBadToken, name)
	}
	return k, nil
}

// DescribePage reads one page of name: at most limit deployments and nodes
// together, after the position next (empty: the first page). Page.Cert is
// nil for an unknown name. A token that is not one DescribePage issued for
// name is ErrBadToken.
func (s *Store) DescribePage(ctx context.Context, name string, limit int, next string) (*Page, error) {
	if limit < 1 || limit > MaxPageLimit {
		return nil, fmt.Errorf("page limit %d: want 1 to %d", limit, MaxPageLimit)
	}
	prefix, start := deployPfx, map[string]ddbtypes.AttributeValue(nil)
	if next != "" {
		k, err := decodeToken(name, next)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(k.SK, nodePfx) {
			prefix = nodePfx
		}
		if k.SK != nodePfx { // NODE# alone starts the nodes
			start = key(k.PK, k.SK)
		}
	}
	c, err := s.GetCert(ctx, name)
	if err != nil || c == nil {
		return &Page{Cert: c}, err
	}
	p := &Page{Cert: c}
	if next == "" {
		if p.Rollout, err = s.GetRollout(ctx, name); err != nil {
			return nil, err
		}
	}
	for left := limit; left > 0; {
		out, err := s.api.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(s.table),
			KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :prefix)"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":pk": str(CertKey(name)), ":prefix": str(prefix),
			},
			ExclusiveStartKey: start,
			Limit:             aws.Int32(int32(left)),
			ConsistentRead:    aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("read a page of %s: %w", name, err)
		}
		for _, it := range out.Items {
			var err error
			if prefix == deployPfx {
				var d Deployment
				if err = unmarshalItem(it, &d); err == nil {
					err = s.withShards(ctx, &d)
				}
				p.Deployments = append(p.Deployments, d)
			} else {
				var n Node
				err = unmarshalItem(it, &n)
				p.Nodes = append(p.Nodes, n)
			}
			if err != nil {
				return nil, fmt.Errorf("decode a page of %s: %w", name, err)
			}
		}
		left -= len(out.Items)
		var last pageKey
		if err := attributevalue.UnmarshalMap(out.LastEvaluatedKey, &last); err != nil {
			return nil, fmt.Errorf("read the page position of %s: %w", name, err)
		}
		switch {
		case len(out.LastEvaluatedKey) > 0 && left == 0:
			p.Next = encodeToken(last)
			return p, nil
		case len(out.LastEvaluatedKey) > 0:
			start = out.LastEvaluatedKey
		case prefix == deployPfx && left == 0:
			p.Next = encodeToken(pageKey{PK: CertKey(name), SK: nodePfx})
			return p, nil
		case prefix == deployPfx:
			prefix, start = nodePfx, nil
		default:
			return p, nil
		}
	}
	return p, nil
}
