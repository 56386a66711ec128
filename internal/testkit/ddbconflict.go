package testkit

// DDBConflicts gives the rig DynamoDB's transaction conflicts, which the
// serialised emulator can never show (it runs one request at a time, so no
// transaction is ever "ongoing" when another arrives).
//
// What it emulates, as "Amazon DynamoDB Transactions: How it works"
// (section "Transaction conflict handling in DynamoDB"), the TransactWriteItems
// and TransactGetItems pages of the DynamoDB API Reference and the model's
// TransactionCanceledException / TransactionConflictException documentation
// describe it:
//   - A PutItem, UpdateItem or DeleteItem on an item that an ongoing
//     TransactWriteItems includes is rejected with TransactionConflictException
//     ("Operation was rejected because there is an ongoing transaction for
//     the item").
//   - A TransactWriteItems with an item that another ongoing TransactWriteItems
//     includes, or that an ongoing operation is updating ("An ongoing
//     operation is in the process of updating the same item"), is cancelled:
//     TransactionCanceledException whose CancellationReasons, in the order of
//     TransactItems, carry Code "TransactionConflict" (message "Transaction is
//     ongoing for the item") for that item and Code "None" for the others.
//   - A TransactGetItems with an item that an ongoing TransactWriteItems,
//     PutItem, UpdateItem or DeleteItem is writing is cancelled the same way;
//     so is an ongoing TransactGetItems when such a write arrives while it is
//     in flight (it fails, the write proceeds).
//   - GetItem, Query and Scan never conflict ("both operations can succeed").
//   - Nothing is written by a rejected or cancelled request, and the SDKs do
//     not retry either error (aws-sdk-go-v2's standard retryer lists neither
//     code; both are HTTP 400), so the application must.
// Not emulated: BatchWriteItem (its requests are forwarded untouched),
// ExecuteStatement/ExecuteTransaction (PartiQL, unused by certferry), and
// idempotency tokens (TransactionInProgressException).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ddbTarget is the X-Amz-Target prefix of DynamoDB's JSON 1.0 protocol.
const ddbTarget = "DynamoDB_20120810."

// RigConflictWindow is how long a transaction is ongoing on the rig
// (StartRig): about a DynamoDB transaction's own latency.
const RigConflictWindow = 5 * time.Millisecond

// DDBConflictOptions configure a DDBConflicts layer.
type DDBConflictOptions struct {
	// Window is how long each transaction (TransactWriteItems or
	// TransactGetItems) is ongoing, holding its items, before the emulator
	// applies it: DynamoDB's own time for a transaction, during which an
	// overlapping request on one of its items conflicts. (Not the time the
	// request then waits in the serialised emulator's queue behind
	// unrelated requests: DynamoDB serves those in parallel.) Single-item
	// writes are ongoing while the emulator serves them.
	Window time.Duration
	// Hold, when set, replaces Window: it returns when the transaction
	// (its request body) stops being ongoing, false if the client gave up.
	// For tests of the layer, which decide when a transaction ends.
	Hold func(ctx context.Context, body []byte) bool
	// Endpoint is the emulator's URL, asked (DescribeTable, straight to the
	// emulator, not through the proxy) for the key schema of a table the
	// layer has not seen a Key of yet (a PutItem carries a whole item).
	Endpoint string
	// KeySchema names the key attributes of tables up front (optional).
	KeySchema map[string][]string
}

// DDBConflictStats counts what the layer answered in place of the emulator.
type DDBConflictStats struct {
	Canceled   int // TransactionCanceledException (TransactWriteItems, TransactGetItems)
	Conflicted int // TransactionConflictException (PutItem, UpdateItem, DeleteItem)
}

// DDBConflicts is the conflict layer; plug it in with proxy.Use(c.Layer).
type DDBConflicts struct {
	opts   DDBConflictOptions
	client *http.Client

	mu      sync.Mutex
	schemas map[string][]string
	writes  map[string]int       // item -> ongoing TransactWriteItems holding it (0 or 1)
	singles map[string]int       // item -> ongoing PutItem/UpdateItem/DeleteItem
	reads   map[string][]*ddbTxn // item -> ongoing TransactGetItems reading it
	stats   DDBConflictStats
}

// ddbTxn is an ongoing TransactGetItems: its items, and which of them a
// concurrent write hit (it is then cancelled with those reasons).
type ddbTxn struct {
	items []string
	hit   []bool
}

// NewDDBConflicts returns a conflict layer.
func NewDDBConflicts(opts DDBConflictOptions) *DDBConflicts {
	c := &DDBConflicts{
		opts: opts, client: &http.Client{Timeout: 30 * time.Second},
		schemas: map[string][]string{}, writes: map[string]int{}, singles: map[string]int{}, reads: map[string][]*ddbTxn{},
	}
	for t, k := range opts.KeySchema {
		c.schemas[t] = slices.Sorted(slices.Values(k))
	}
	return c
}

// Stats returns the conflicts answered so far.
func (c *DDBConflicts) Stats() DDBConflictStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Layer is the proxy layer (FaultProxy.Use).
func (c *DDBConflicts) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), ddbTarget)
		if !ok || !slices.Contains([]string{"TransactWriteItems", "TransactGetItems", "PutItem", "UpdateItem", "DeleteItem"}, op) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		items, err := c.items(r, op, body)
		if err != nil {
			// A request the layer cannot read: let the emulator (and the
			// model check) answer it, untracked.
			next.ServeHTTP(w, r)
			return
		}
		switch op {
		case "TransactWriteItems":
			c.transactWrite(w, r, next, body, items)
		case "TransactGetItems":
			c.transactGet(w, r, next, body, items)
		default:
			c.singleWrite(w, r, next, body, items[0])
		}
	})
}

// cancelOverlap, called with c.mu held, answers TransactionCanceledException
// (TransactionConflict at each item an ongoing write holds) and releases
// c.mu when any of items is being written; otherwise it keeps c.mu held
// and reports false.
func (c *DDBConflicts) cancelOverlap(w http.ResponseWriter, items []string) bool {
	var hit []bool
	for i, it := range items {
		if c.writes[it] > 0 || c.singles[it] > 0 {
			hit = setHit(hit, len(items), i)
		}
	}
	if hit == nil {
		return false
	}
	c.stats.Canceled++
	c.mu.Unlock()
	writeCanceled(w, hit)
	return true
}

// transactWrite cancels a transaction that overlaps an ongoing write of one
// of its items; otherwise it holds its items for the window and the
// emulator's answer.
func (c *DDBConflicts) transactWrite(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte, items []string) {
	c.mu.Lock()
	if c.cancelOverlap(w, items) {
		return
	}
	for _, it := range items {
		c.writes[it]++
		c.hitReaders(it)
	}
	c.mu.Unlock()
	ok := c.hold(r, body)
	c.mu.Lock()
	for _, it := range items {
		if c.writes[it]--; c.writes[it] == 0 {
			delete(c.writes, it)
		}
	}
	c.mu.Unlock()
	if ok {
		// The emulator applies it atomically, after any transaction on
		// its items that ended earlier, as DynamoDB orders them.
		forward(w, r, next, body)
	}
}

// singleWrite rejects a write to an item an ongoing transaction holds.
func (c *DDBConflicts) singleWrite(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte, item string) {
	c.mu.Lock()
	if c.writes[item] > 0 {
		c.stats.Conflicted++
		c.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException",`+
			`"message":"Transaction is ongoing for the item"}`))
		return
	}
	c.singles[item]++
	c.hitReaders(item)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.singles[item]--; c.singles[item] == 0 {
			delete(c.singles, item)
		}
		c.mu.Unlock()
	}()
	forward(w, r, next, body)
}

// transactGet cancels a read transaction that overlaps a write of one of
// its items, whether the write was there first or came while it was in
// flight.
func (c *DDBConflicts) transactGet(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte, items []string) {
	c.mu.Lock()
	if c.cancelOverlap(w, items) {
		return
	}
	tx := &ddbTxn{items: items, hit: make([]bool, len(items))}
	for _, it := range items {
		c.reads[it] = append(c.reads[it], tx)
	}
	c.mu.Unlock()
	ok := c.hold(r, body)
	c.mu.Lock()
	for _, it := range items {
		c.reads[it] = slices.DeleteFunc(c.reads[it], func(t *ddbTxn) bool { return t == tx })
		if len(c.reads[it]) == 0 {
			delete(c.reads, it)
		}
	}
	doomed := slices.Contains(tx.hit, true)
	if doomed {
		c.stats.Canceled++
	}
	c.mu.Unlock()
	switch {
	case !ok:
	case doomed:
		writeCanceled(w, tx.hit)
	default:
		forward(w, r, next, body)
	}
}

// hitReaders marks item as written under every ongoing TransactGetItems
// that reads it. c.mu is held.
func (c *DDBConflicts) hitReaders(item string) {
	for _, tx := range c.reads[item] {
		for i, it := range tx.items {
			if it == item {
				tx.hit[i] = true
			}
		}
	}
}

// hold keeps a transaction in flight for the window (or as Hold says);
// false when the client gave up meanwhile.
func (c *DDBConflicts) hold(r *http.Request, body []byte) bool {
	if c.opts.Hold != nil {
		return c.opts.Hold(r.Context(), body)
	}
	if c.opts.Window <= 0 {
		return true
	}
	t := time.NewTimer(c.opts.Window)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func setHit(hit []bool, n, i int) []bool {
	if hit == nil {
		hit = make([]bool, n)
	}
	hit[i] = true
	return hit
}

func withBody(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

func forward(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte) {
	next.ServeHTTP(w, withBody(r, body))
}

// writeCanceled answers TransactionCanceledException as DynamoDB does: one
// reason per requested item, in order, "None" (without a message) where
// nothing went wrong.
func writeCanceled(w http.ResponseWriter, hit []bool) {
	type reason struct {
		Code    string
		Message string `json:",omitempty"`
	}
	reasons := make([]reason, len(hit))
	codes := make([]string, len(hit))
	for i, h := range hit {
		reasons[i] = reason{Code: "None"}
		if h {
			reasons[i] = reason{Code: "TransactionConflict", Message: "Transaction is ongoing for the item"}
		}
		codes[i] = reasons[i].Code
	}
	b, _ := json.Marshal(struct {
		Type                string `json:"__type"`
		Message             string
		CancellationReasons []reason
	}{
		Type:                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		Message:             "Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]",
		CancellationReasons: reasons,
	})
	writeJSON(w, http.StatusBadRequest, b)
}

// ddbItemRef is a Put, Update, Delete, ConditionCheck or Get of one item.
type ddbItemRef struct {
	TableName string
	Key       map[string]json.RawMessage
	Item      map[string]json.RawMessage
}

// items returns the items a request touches, in request order, each as
// table + key.
func (c *DDBConflicts) items(r *http.Request, op string, body []byte) ([]string, error) {
	var refs []ddbItemRef
	switch op {
	case "TransactWriteItems", "TransactGetItems":
		var in struct {
			TransactItems []map[string]ddbItemRef
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		for _, ti := range in.TransactItems {
			if len(ti) != 1 {
				return nil, fmt.Errorf("transact item with %d actions", len(ti))
			}
			for _, ref := range ti {
				refs = append(refs, ref)
			}
		}
	default:
		var ref ddbItemRef
		if err := json.Unmarshal(body, &ref); err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("no items")
	}
	out := make([]string, len(refs))
	for i, ref := range refs {
		k, err := c.itemKey(r, ref)
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// itemKey is table + the item's key attributes, canonical.
func (c *DDBConflicts) itemKey(r *http.Request, ref ddbItemRef) (string, error) {
	table := ref.TableName
	if _, name, ok := strings.Cut(table, ":table/"); ok { // a table ARN
		table = name
	}
	if table == "" {
		return "", fmt.Errorf("no table name")
	}
	attrs := ref.Key
	if attrs == nil {
		schema, err := c.schema(r, table)
		if err != nil {
			return "", err
		}
		attrs = map[string]json.RawMessage{}
		for _, a := range schema {
			v, ok := ref.Item[a]
			if !ok {
				return "", fmt.Errorf("item lacks key attribute %s", a)
			}
			attrs[a] = v
		}
	} else {
		c.mu.Lock()
		if _, ok := c.schemas[table]; !ok {
			c.schemas[table] = slices.Sorted(func(yield func(string) bool) {
				for a := range attrs {
					if !yield(a) {
						return
					}
				}
			})
		}
		c.mu.Unlock()
	}
	names := make([]string, 0, len(attrs))
	for a := range attrs {
		names = append(names, a)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(table)
	for _, a := range names {
		var v bytes.Buffer
		if err := json.Compact(&v, attrs[a]); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "\x00%s=%s", a, v.Bytes())
	}
	return b.String(), nil
}

// schema returns the key attribute names of table, asking the emulator
// once when no request has shown them yet.
func (c *DDBConflicts) schema(r *http.Request, table string) ([]string, error) {
	c.mu.Lock()
	s, ok := c.schemas[table]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	if c.opts.Endpoint == "" {
		return nil, fmt.Errorf("key schema of %s unknown", table)
	}
	body, _ := json.Marshal(map[string]string{"TableName": table})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.opts.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", ddbTarget+"DescribeTable")
	// The emulator reads the region from the credential scope.
	for _, h := range []string{"Authorization", "X-Amz-Date"} {
		req.Header.Set(h, r.Header.Get(h))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Table struct {
			KeySchema []struct{ AttributeName string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Table.KeySchema) == 0 {
		return nil, fmt.Errorf("describe table %s: status %d %v", table, resp.StatusCode, err)
	}
	for _, k := range out.Table.KeySchema {
		s = append(s, k.AttributeName)
	}
	sort.Strings(s)
	c.mu.Lock()
	c.schemas[table] = s
	c.mu.Unlock()
	return s, nil
}
