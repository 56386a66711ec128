package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	miniserver "github.com/truora/minidyn/server"

	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

// scalingDynamoDB answers the bench's DynamoDB calls where moto cannot keep
// up at 10 000 names. moto deep-copies the table a
// TransactWriteItems writes, once per item of it (its rollback snapshot), so at 100 000+ items each
// transaction costs seconds; DynamoDB's cost per call does not grow with
// the table.
//
// It is minidyn (an in-memory DynamoDB speaking DynamoDB's JSON protocol,
// github.com/truora/minidyn) split by partition key over shards, one
// minidyn per shard, each holding certferry's table: minidyn too scans its
// whole table on Query and copies it on TransactWriteItems, so each shard
// holds about 1/shards of the partitions and a call costs what it costs on
// a small table. Inside a shard everything is minidyn's (conditions,
// updates, transactions). The router:
//
//   - GetItem, PutItem, UpdateItem, DeleteItem and a Query of the table
//     (KeyConditionExpression "PK = :v …") go to the shard of their PK;
//   - TransactWriteItems and TransactGetItems go to the shard of their
//     items' PKs and are refused (the bench fails) when those PKs are in
//     different shards: the bench's transactions each stay in one
//     partition, and a split transaction could not be atomic here;
//   - BatchWriteItem and BatchGetItem are split by shard (they are not
//     atomic in DynamoDB either) and their answers merged;
//   - Scan walks the shards in turn; a page ends at a shard's end, with the
//     shard's last key as LastEvaluatedKey, so the caller's pagination is
//     exercised (minidyn does not apply DynamoDB's 1 MB page limit, so the
//     Scan call count is lower than DynamoDB's: ~1 page per shard);
//   - CreateTable goes to every shard, DescribeTable to the first;
//   - anything else (a Query of an index, another operation) is refused
//     with a message, never answered wrongly.
//
// Requests reach it through the bench's proxy, behind the same AWS model
// check as every call (testkit.Rig.ModelCheck: botocore's model and
// DynamoDB's item and transaction limits), so a request DynamoDB would
// refuse still fails the bench.
type scalingDynamoDB struct {
	shards []http.Handler
	srv    *httptest.Server // the router, for the seed's client
	api    *dynamodb.Client // straight to the router, not counted (fixtures)
}

const dynamoDBTarget = "DynamoDB_20120810."

// startScalingDynamoDB starts n shards and creates certferry's table in
// them, defined as template.yaml defines it (localenv.TableInput),
// straight through the router. The bench instead creates it through its
// guarded proxy (newScalingDynamoDB, createTable): the AWS model check
// learns the table's keys (DynamoDB's key size limits) from the
// CreateTable it sees.
func startScalingDynamoDB(ctx context.Context, setup aws.Config, table string, n int) (*scalingDynamoDB, error) {
	d := newScalingDynamoDB(setup, n)
	if err := d.createTable(ctx, d.api, table); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// newScalingDynamoDB starts n empty shards and their router.
func newScalingDynamoDB(setup aws.Config, n int) *scalingDynamoDB {
	d := &scalingDynamoDB{}
	for range n {
		d.shards = append(d.shards, miniserver.NewServer())
	}
	d.srv = httptest.NewServer(http.HandlerFunc(d.route))
	cfg := setup.Copy()
	cfg.BaseEndpoint = aws.String(d.srv.URL)
	d.api = dynamodb.NewFromConfig(cfg)
	return d
}

// createTable creates certferry's table in every shard through api (a
// client of the router, or of a proxy whose layer is the router's).
func (d *scalingDynamoDB) createTable(ctx context.Context, api *dynamodb.Client, table string) error {
	if _, err := api.CreateTable(ctx, localenv.TableInput(table)); err != nil {
		return fmt.Errorf("create table %s in the in-memory DynamoDB: %w", table, err)
	}
	return nil
}

// layer sends DynamoDB's requests to the shards and every other request on
// to next (moto).
func (d *scalingDynamoDB) layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), dynamoDBTarget) {
			d.route(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *scalingDynamoDB) close() { d.srv.Close() }

// answer is one shard's response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (d *scalingDynamoDB) call(shard int, r *http.Request, body []byte) answer {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	d.shards[shard].ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (a answer) write(w http.ResponseWriter) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(a.body)), 10))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func refuse(w http.ResponseWriter, format string, args ...any) {
	msg, _ := json.Marshal(map[string]string{
		"__type":  "com.amazon.coral.validate#ValidationException",
		"message": "certferry-bench's sharded DynamoDB: " + fmt.Sprintf(format, args...),
	})
	answer{status: http.StatusBadRequest, header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, body: msg}.write(w)
}

// shardOf is the shard of a partition key value. The sweep's run records
// (PK "SWEEP", the latest run, and "SWEEP#<run>") share one shard: one
// transaction writes both when a run begins.
func (d *scalingDynamoDB) shardOf(pk string) int {
	if strings.HasPrefix(pk, "SWEEP") {
		pk = "SWEEP"
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(pk))
	return int(h.Sum32() % uint32(len(d.shards)))
}

// pkOf is the PK of an item or key in DynamoDB JSON ({"PK":{"S":"…"}}).
func pkOf(item map[string]any) (string, bool) {
	v, ok := item["PK"].(map[string]any)
	if !ok {
		return "", false
	}
	s, ok := v["S"].(string)
	return s, ok
}

var pkCondition = regexp.MustCompile(`(?:^|[\s(])(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)`)

// queryPK is the PK value a table Query's KeyConditionExpression names.
func queryPK(in map[string]any) (string, bool) {
	expr, _ := in["KeyConditionExpression"].(string)
	names, _ := in["ExpressionAttributeNames"].(map[string]any)
	values, _ := in["ExpressionAttributeValues"].(map[string]any)
	for _, m := range pkCondition.FindAllStringSubmatch(expr, -1) {
		attr := m[1]
		if n, ok := names[attr].(string); ok {
			attr = n
		}
		if attr != "PK" {
			continue
		}
		v, _ := values[m[2]].(map[string]any)
		if s, ok := v["S"].(string); ok {
			return s, true
		}
	}
	return "", false
}

func (d *scalingDynamoDB) route(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		refuse(w, "read request: %v", err)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), dynamoDBTarget)
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		refuse(w, "%s: request is not JSON: %v", op, err)
		return
	}
	switch op {
	case "GetItem", "UpdateItem", "DeleteItem", "PutItem":
		field := "Key"
		if op == "PutItem" {
			field = "Item"
		}
		item, _ := in[field].(map[string]any)
		pk, ok := pkOf(item)
		if !ok {
			refuse(w, "%s without a string PK", op)
			return
		}
		d.call(d.shardOf(pk), r, body).write(w)
	case "Query":
		if _, ok := in["IndexName"]; ok {
			refuse(w, "Query of index %v is not routed (it spans every shard)", in["IndexName"])
			return
		}
		pk, ok := queryPK(in)
		if !ok {
			refuse(w, "Query whose KeyConditionExpression names no PK value: %v", in["KeyConditionExpression"])
			return
		}
		d.call(d.shardOf(pk), r, body).write(w)
	case "TransactWriteItems", "TransactGetItems":
		d.transact(w, r, op, in, body)
	case "BatchWriteItem":
		d.batchWrite(w, r, in)
	case "BatchGetItem":
		d.batchGet(w, r, in)
	case "Scan":
		d.scan(w, r, in)
	case "CreateTable":
		var last answer
		for i := range d.shards {
			if last = d.call(i, r, body); last.status != http.StatusOK {
				break
			}
		}
		last.write(w)
	case "DescribeTable":
		d.call(0, r, body).write(w)
	default:
		refuse(w, "%s is not routed", op)
	}
}

func (d *scalingDynamoDB) transact(w http.ResponseWriter, r *http.Request, op string, in map[string]any, body []byte) {
	items, _ := in["TransactItems"].([]any)
	shard := -1
	for i, it := range items {
		action, _ := it.(map[string]any)
		for kind, v := range action {
			a, _ := v.(map[string]any)
			field := "Key"
			if kind == "Put" {
				field = "Item"
			}
			key, _ := a[field].(map[string]any)
			pk, ok := pkOf(key)
			if !ok {
				refuse(w, "%s item %d (%s) without a string PK", op, i, kind)
				return
			}
			s := d.shardOf(pk)
			if shard >= 0 && s != shard {
				refuse(w, "%s spans partitions in different shards (item %d, PK %q); the bench's transactions stay in one", op, i, pk)
				return
			}
			shard = s
		}
	}
	if shard < 0 {
		shard = 0 // no items: minidyn answers the validation error
	}
	d.call(shard, r, body).write(w)
}

func (d *scalingDynamoDB) batchWrite(w http.ResponseWriter, r *http.Request, in map[string]any) {
	reqs, _ := in["RequestItems"].(map[string]any)
	split := map[int]map[string][]any{}
	for table, v := range reqs {
		list, _ := v.([]any)
		for _, wr := range list {
			m, _ := wr.(map[string]any)
			var key map[string]any
			if p, ok := m["PutRequest"].(map[string]any); ok {
				key, _ = p["Item"].(map[string]any)
			} else if dr, ok := m["DeleteRequest"].(map[string]any); ok {
				key, _ = dr["Key"].(map[string]any)
			}
			pk, ok := pkOf(key)
			if !ok {
				refuse(w, "BatchWriteItem request without a string PK")
				return
			}
			s := d.shardOf(pk)
			if split[s] == nil {
				split[s] = map[string][]any{}
			}
			split[s][table] = append(split[s][table], wr)
		}
	}
	unprocessed := map[string][]any{}
	for s, items := range split {
		a, ok := d.sub(w, r, s, map[string]any{"RequestItems": items})
		if !ok {
			return
		}
		u, _ := a["UnprocessedItems"].(map[string]any)
		for table, v := range u {
			list, _ := v.([]any)
			unprocessed[table] = append(unprocessed[table], list...)
		}
	}
	d.reply(w, map[string]any{"UnprocessedItems": unprocessed})
}

func (d *scalingDynamoDB) batchGet(w http.ResponseWriter, r *http.Request, in map[string]any) {
	reqs, _ := in["RequestItems"].(map[string]any)
	split := map[int]map[string]any{}
	for table, v := range reqs {
		ka, _ := v.(map[string]any)
		keys, _ := ka["Keys"].([]any)
		for _, k := range keys {
			key, _ := k.(map[string]any)
			pk, ok := pkOf(key)
			if !ok {
				refuse(w, "BatchGetItem key without a string PK")
				return
			}
			s := d.shardOf(pk)
			if split[s] == nil {
				split[s] = map[string]any{}
			}
			t, _ := split[s][table].(map[string]any)
			if t == nil {
				t = map[string]any{}
				for f, fv := range ka {
					if f != "Keys" {
						t[f] = fv
					}
				}
				split[s][table] = t
			}
			ks, _ := t["Keys"].([]any)
			t["Keys"] = append(ks, k)
		}
	}
	responses, unprocessed := map[string][]any{}, map[string]any{}
	for s, items := range split {
		a, ok := d.sub(w, r, s, map[string]any{"RequestItems": items})
		if !ok {
			return
		}
		got, _ := a["Responses"].(map[string]any)
		for table, v := range got {
			list, _ := v.([]any)
			responses[table] = append(responses[table], list...)
		}
		u, _ := a["UnprocessedKeys"].(map[string]any)
		for table, v := range u {
			if len(v.(map[string]any)["Keys"].([]any)) > 0 {
				refuse(w, "BatchGetItem left keys of %s unprocessed in a shard; not merged", table)
				return
			}
		}
	}
	d.reply(w, map[string]any{"Responses": responses, "UnprocessedKeys": unprocessed})
}

// scan answers one page: the rest of the shard that holds
// ExclusiveStartKey (or the first shard), moving on to the next shard when
// that one has nothing left.
func (d *scalingDynamoDB) scan(w http.ResponseWriter, r *http.Request, in map[string]any) {
	shard := 0
	if esk, ok := in["ExclusiveStartKey"].(map[string]any); ok {
		pk, ok := pkOf(esk)
		if !ok {
			refuse(w, "Scan ExclusiveStartKey without a string PK")
			return
		}
		shard = d.shardOf(pk)
	}
	for {
		a, ok := d.sub(w, r, shard, in)
		if !ok {
			return
		}
		items, _ := a["Items"].([]any)
		_, more := a["LastEvaluatedKey"]
		if !more && shard+1 < len(d.shards) {
			if len(items) == 0 {
				shard++
				delete(in, "ExclusiveStartKey")
				continue
			}
			// The shard ended: its last key carries the caller to the
			// next shard (that key's shard has nothing after it).
			if key := lastKey(items); key != nil {
				a["LastEvaluatedKey"] = key
			} else {
				refuse(w, "Scan with a ProjectionExpression that drops the key cannot page across shards")
				return
			}
		}
		d.reply(w, a)
		return
	}
}

// lastKey is the table key of a scan page's last item.
func lastKey(items []any) map[string]any {
	last, _ := items[len(items)-1].(map[string]any)
	pk, okPK := last["PK"]
	sk, okSK := last["SK"]
	if !okPK || !okSK {
		return nil
	}
	return map[string]any{"PK": pk, "SK": sk}
}

// sub sends body to one shard and decodes its JSON answer; a shard's error
// is passed to the caller as it is.
func (d *scalingDynamoDB) sub(w http.ResponseWriter, r *http.Request, shard int, in map[string]any) (map[string]any, bool) {
	body, err := json.Marshal(in)
	if err != nil {
		refuse(w, "encode a shard's request: %v", err)
		return nil, false
	}
	a := d.call(shard, r, body)
	if a.status != http.StatusOK {
		a.write(w)
		return nil, false
	}
	var out map[string]any
	if err := json.Unmarshal(a.body, &out); err != nil {
		refuse(w, "a shard's answer is not JSON: %v", err)
		return nil, false
	}
	return out, true
}

func (d *scalingDynamoDB) reply(w http.ResponseWriter, out map[string]any) {
	body, err := json.Marshal(out)
	if err != nil {
		refuse(w, "encode the answer: %v", err)
		return
	}
	answer{status: http.StatusOK, header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, body: body}.write(w)
}

// tableBytes is the table's size as DynamoDB counts items ("Item sizes and
// formats", DynamoDB Developer Guide; testkit.ItemSize), read with an
// uncounted Scan of every shard. DynamoDB's Scan reads at most 1 MB per
// page ("Scanning tables", Developer Guide), so tableBytes/1 MB is the
// number of pages a Scan of the whole table takes on DynamoDB.
func (d *scalingDynamoDB) tableBytes(ctx context.Context, table string) (int, error) {
	n := 0
	var esk map[string]any
	for {
		in := map[string]any{"TableName": table}
		if esk != nil {
			in["ExclusiveStartKey"] = esk
		}
		body, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.srv.URL, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Amz-Target", dynamoDBTarget+"Scan")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		rec := httptest.NewRecorder()
		d.route(rec, req)
		if rec.Code != http.StatusOK {
			return 0, fmt.Errorf("scan %s: %d %s", table, rec.Code, rec.Body.String())
		}
		var out struct {
			Items            []map[string]any
			LastEvaluatedKey map[string]any
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			return 0, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range out.Items {
			n += testkit.ItemSize(it)
		}
		if out.LastEvaluatedKey == nil {
			return n, nil
		}
		esk = out.LastEvaluatedKey
	}
}
