package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fakeDDB stands for the emulator behind the layer: it answers every
// request with an empty success, and holds the requests that carry the
// marker HOLD until release is closed (single-item writes are ongoing while
// the emulator serves them; transactions carrying HOLD are held by the
// layer's Hold hook until release), so a test decides how long a request
// stays in flight (no timing).
type fakeDDB struct {
	srv      *httptest.Server
	arrived  chan string // operation of every request that reached it
	release  chan struct{}
	describe atomic.Int32
}

func newFakeDDB(t *testing.T) *fakeDDB {
	f := &fakeDDB{arrived: make(chan string, 100), release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), ddbTarget)
		if op == "DescribeTable" {
			f.describe.Add(1)
			_, _ = w.Write([]byte(`{"Table":{"TableName":"inv","KeySchema":[{"AttributeName":"PK","KeyType":"HASH"},{"AttributeName":"SK","KeyType":"RANGE"}]}}`))
			return
		}
		f.arrived <- op
		if strings.Contains(string(body), "HOLD") {
			<-f.release
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if op == "TransactGetItems" {
			_, _ = w.Write([]byte(`{"Responses":[{},{}]}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// conflictRig is the fake emulator behind a FaultProxy with the conflict
// layer, a counter of the requests the SDK sent, and a DynamoDB client.
type conflictRig struct {
	proxyURL  string
	fake      *fakeDDB
	layer     *DDBConflicts
	client    *dynamodb.Client
	sent      atomic.Int32
	releaseMu sync.Once
}

func newConflictRig(t *testing.T, opts DDBConflictOptions) *conflictRig {
	r := &conflictRig{fake: newFakeDDB(t)}
	if opts.Endpoint == "" && opts.KeySchema == nil {
		opts.Endpoint = r.fake.srv.URL
	}
	if opts.Window == 0 && opts.Hold == nil {
		// A transaction carrying HOLD stays ongoing until release.
		opts.Hold = func(ctx context.Context, body []byte) bool {
			if !strings.Contains(string(body), "HOLD") {
				return true
			}
			r.fake.arrived <- "hold"
			select {
			case <-r.fake.release:
				return true
			case <-ctx.Done():
				return false
			}
		}
	}
	p, err := NewFaultProxy(r.fake.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	r.proxyURL = p.URL
	r.layer = NewDDBConflicts(opts)
	p.Use(r.layer.Layer)
	p.Use(func(next http.Handler) http.Handler { // outermost: what the SDK sent
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.sent.Add(1)
			next.ServeHTTP(w, req)
		})
	})
	r.client = dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	})
	t.Cleanup(r.releaseAll)
	return r
}

func (r *conflictRig) releaseAll() { r.releaseMu.Do(func() { close(r.fake.release) }) }

func ddbKey(pk, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"PK": &ddbtypes.AttributeValueMemberS{Value: pk}, "SK": &ddbtypes.AttributeValueMemberS{Value: sk},
	}
}

func ddbItem(pk, sk, v string) map[string]ddbtypes.AttributeValue {
	it := ddbKey(pk, sk)
	it["v"] = &ddbtypes.AttributeValueMemberS{Value: v}
	return it
}

func ddbUpdate(pk, sk, v string) *ddbtypes.Update {
	return &ddbtypes.Update{
		TableName: aws.String("inv"), Key: ddbKey(pk, sk), UpdateExpression: aws.String("SET v = :v"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": &ddbtypes.AttributeValueMemberS{Value: v}},
	}
}

func (r *conflictRig) transact(ctx context.Context, items ...ddbtypes.TransactWriteItem) error {
	_, err := r.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return err
}

func (r *conflictRig) updateItem(ctx context.Context, pk, sk, v string) error {
	u := ddbUpdate(pk, sk, v)
	_, err := r.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression, ExpressionAttributeValues: u.ExpressionAttributeValues,
	})
	return err
}

// inFlight starts call in the background, waits until it reached the
// emulator (where HOLD keeps it), and returns its result channel.
func (r *conflictRig) inFlight(t *testing.T, call func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case <-r.fake.arrived:
	case err := <-done:
		t.Fatalf("the request meant to stay in flight ended: %v", err)
	}
	return done
}

// codes returns the reasons' codes of a TransactionCanceledException.
func cancelCodes(t *testing.T, err error) []string {
	t.Helper()
	var tce *ddbtypes.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("error %v (%T), want a TransactionCanceledException", err, err)
	}
	var out []string
	for i, rs := range tce.CancellationReasons {
		out = append(out, aws.ToString(rs.Code))
		if aws.ToString(rs.Code) == "TransactionConflict" && aws.ToString(rs.Message) != "Transaction is ongoing for the item" {
			t.Errorf("reason %d message %q", i, aws.ToString(rs.Message))
		}
		if aws.ToString(rs.Code) == "None" && rs.Message != nil {
			t.Errorf("reason %d: None with a message %q", i, *rs.Message)
		}
	}
	return out
}

func TestDDBConflictsTransactWrite(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		second []ddbtypes.TransactWriteItem
		want   []string // nil: no conflict
	}{
		{"same item second", []ddbtypes.TransactWriteItem{
			{Update: ddbUpdate("CERT#a", "NODE#1", "x")}, {Update: ddbUpdate("CERT#a", "DEPLOY#1", "x")}},
			[]string{"None", "TransactionConflict"}},
		{"same item first, as a put", []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: ddbItem("CERT#a", "META", "y")}},
			{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "NODE#9"), ConditionExpression: aws.String("attribute_exists(PK)")}}},
			[]string{"TransactionConflict", "None"}},
		{"both items", []ddbtypes.TransactWriteItem{
			{Delete: &ddbtypes.Delete{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "META")}}, {Update: ddbUpdate("CERT#a", "DEPLOY#1", "x")}},
			[]string{"TransactionConflict", "TransactionConflict"}},
		{"different items", []ddbtypes.TransactWriteItem{
			{Update: ddbUpdate("CERT#a", "NODE#2", "x")}, {Update: ddbUpdate("CERT#b", "DEPLOY#1", "x")}}, nil},
		{"same key in another table", []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{TableName: aws.String("other"), Key: ddbKey("CERT#a", "DEPLOY#1"), UpdateExpression: aws.String("SET v = :v"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": &ddbtypes.AttributeValueMemberS{Value: "x"}}}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newConflictRig(t, DDBConflictOptions{KeySchema: map[string][]string{"inv": {"PK", "SK"}, "other": {"PK", "SK"}}})
			first := r.inFlight(t, func() error {
				return r.transact(ctx,
					ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: ddbItem("CERT#a", "META", "HOLD")}},
					ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "HOLD")})
			})
			before := r.sent.Load()
			err := r.transact(ctx, tc.second...)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("transaction on other items: %v", err)
				}
			} else {
				if got := cancelCodes(t, err); strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Fatalf("reasons %v, want %v", got, tc.want)
				}
				if n := r.sent.Load() - before; n != 1 {
					t.Fatalf("the SDK sent the cancelled transaction %d times, want once (not retried)", n)
				}
				if s := r.layer.Stats(); s.Canceled != 1 || s.Conflicted != 0 {
					t.Fatalf("stats %+v", s)
				}
			}
			r.releaseAll()
			if err := <-first; err != nil {
				t.Fatalf("the first transaction: %v", err)
			}
			// Once the first is done, its items are free again.
			if err := r.transact(ctx, tc.second...); err != nil {
				t.Fatalf("after the first finished: %v", err)
			}
		})
	}
}

func TestDDBConflictsSingleWrites(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		write    func(r *conflictRig) error
		conflict bool
	}{
		{"update on a held item", func(r *conflictRig) error { return r.updateItem(ctx, "CERT#a", "DEPLOY#1", "x") }, true},
		{"put on a held item (key from the table's schema)", func(r *conflictRig) error {
			_, err := r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("inv"), Item: ddbItem("CERT#a", "META", "x")})
			return err
		}, true},
		{"delete on a held item", func(r *conflictRig) error {
			_, err := r.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "META")})
			return err
		}, true},
		{"update on another item", func(r *conflictRig) error { return r.updateItem(ctx, "CERT#a", "DEPLOY#2", "x") }, false},
		{"put on another item", func(r *conflictRig) error {
			_, err := r.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("inv"), Item: ddbItem("CERT#b", "META", "x")})
			return err
		}, false},
		{"reads never conflict", func(r *conflictRig) error {
			_, err := r.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "META")})
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No schema given: the layer asks the emulator (DescribeTable).
			r := newConflictRig(t, DDBConflictOptions{})
			first := r.inFlight(t, func() error {
				return r.transact(ctx,
					ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: ddbItem("CERT#a", "META", "HOLD")}},
					ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "HOLD")})
			})
			if n := r.fake.describe.Load(); n != 1 {
				t.Fatalf("DescribeTable asked %d times, want once", n)
			}
			before := r.sent.Load()
			err := tc.write(r)
			var tce *ddbtypes.TransactionConflictException
			switch {
			case tc.conflict && !errors.As(err, &tce):
				t.Fatalf("error %v (%T), want a TransactionConflictException", err, err)
			case tc.conflict && (tce.ErrorMessage() != "Transaction is ongoing for the item" || r.sent.Load()-before != 1):
				t.Fatalf("conflict %q after %d requests, want DynamoDB's message after one (not retried)", tce.ErrorMessage(), r.sent.Load()-before)
			case !tc.conflict && err != nil:
				t.Fatalf("write: %v", err)
			}
			if tc.conflict && r.layer.Stats().Conflicted != 1 {
				t.Fatalf("stats %+v", r.layer.Stats())
			}
			r.releaseAll()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := tc.write(r); err != nil {
				t.Fatalf("after the transaction finished: %v", err)
			}
		})
	}
}

// A transaction that overlaps an ongoing single-item write of one of its
// items is cancelled ("An ongoing operation is in the process of updating
// the same item", TransactWriteItems, DynamoDB API Reference).
func TestDDBConflictsTransactionAfterSingleWrite(t *testing.T) {
	ctx := context.Background()
	r := newConflictRig(t, DDBConflictOptions{KeySchema: map[string][]string{"inv": {"PK", "SK"}}})
	first := r.inFlight(t, func() error { return r.updateItem(ctx, "CERT#a", "DEPLOY#1", "HOLD") })
	err := r.transact(ctx, ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "NODE#1", "x")}, ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "x")})
	if got := cancelCodes(t, err); strings.Join(got, ",") != "None,TransactionConflict" {
		t.Fatalf("reasons %v", got)
	}
	r.releaseAll()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestDDBConflictsTransactGet(t *testing.T) {
	ctx := context.Background()
	get := func(r *conflictRig, sk string) error {
		_, err := r.client.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []ddbtypes.TransactGetItem{
			{Get: &ddbtypes.Get{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "META")}},
			{Get: &ddbtypes.Get{TableName: aws.String("inv"), Key: ddbKey("CERT#a", sk)}},
		}})
		return err
	}
	t.Run("after an ongoing write", func(t *testing.T) {
		r := newConflictRig(t, DDBConflictOptions{KeySchema: map[string][]string{"inv": {"PK", "SK"}}})
		first := r.inFlight(t, func() error { return r.updateItem(ctx, "CERT#a", "DEPLOY#1", "HOLD") })
		if got := cancelCodes(t, get(r, "DEPLOY#1")); strings.Join(got, ",") != "None,TransactionConflict" {
			t.Fatalf("reasons %v", got)
		}
		if err := get(r, "DEPLOY#2"); err != nil {
			t.Fatalf("read of other items: %v", err)
		}
		r.releaseAll()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a write while it is in flight", func(t *testing.T) {
		r := newConflictRig(t, DDBConflictOptions{KeySchema: map[string][]string{"inv": {"PK", "SK"}}})
		reading := r.inFlight(t, func() error {
			_, err := r.client.TransactGetItems(ctx, &dynamodb.TransactGetItemsInput{TransactItems: []ddbtypes.TransactGetItem{
				{Get: &ddbtypes.Get{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "META")}},
				{Get: &ddbtypes.Get{TableName: aws.String("inv"), Key: ddbKey("CERT#a", "HOLD")}},
			}})
			return err
		})
		// The write proceeds; the ongoing read transaction is the one that
		// fails.
		if err := r.updateItem(ctx, "CERT#a", "META", "x"); err != nil {
			t.Fatalf("write during a read transaction: %v", err)
		}
		r.releaseAll()
		if got := cancelCodes(t, <-reading); strings.Join(got, ",") != "TransactionConflict,None" {
			t.Fatalf("reasons %v", got)
		}
	})
}

// The window keeps a transaction in flight before it reaches the emulator;
// a client that gives up meanwhile sends nothing to it and frees its items.
func TestDDBConflictsWindow(t *testing.T) {
	r := newConflictRig(t, DDBConflictOptions{Window: time.Hour, KeySchema: map[string][]string{"inv": {"PK", "SK"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The polling writes below may be ongoing when the transaction
		// comes, which cancels it: it tries again, as the store would.
		var canceled *ddbtypes.TransactionCanceledException
		err := r.transact(ctx, ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "x")})
		for errors.As(err, &canceled) {
			err = r.transact(ctx, ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "x")})
		}
		done <- err
	}()
	// Wait until the held transaction makes a write of its item conflict.
	var tce *ddbtypes.TransactionConflictException
	tries := 0
	for err := error(nil); !errors.As(err, &tce); err = r.updateItem(context.Background(), "CERT#a", "DEPLOY#1", "y") {
		if tries++; tries > 20000 {
			t.Fatal("the held transaction never made a write of its item conflict")
		}
		select {
		case err := <-done:
			t.Fatalf("the held transaction ended: %v", err)
		default:
		}
		if err != nil {
			t.Fatalf("write before the hold: %v", err)
		}
		// Writes that came before the transaction reached the emulator.
		for len(r.fake.arrived) > 0 {
			<-r.fake.arrived
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled transaction: %v", err)
	}
	for len(r.fake.arrived) > 0 {
		if op := <-r.fake.arrived; op == "TransactWriteItems" {
			t.Fatal("a transaction whose client gave up reached the emulator")
		}
	}
	// The server notices the client's departure on its own time: wait for
	// the item to be free, then write it.
	for err := r.updateItem(context.Background(), "CERT#a", "DEPLOY#1", "z"); err != nil; err = r.updateItem(context.Background(), "CERT#a", "DEPLOY#1", "z") {
		if !errors.As(err, &tce) {
			t.Fatalf("after the hold: %v", err)
		}
	}
}

// The answers on the wire, as DynamoDB's JSON 1.0 protocol sends them:
// HTTP 400, a CRC32 of the body, the error type in __type, and for a
// cancellation one reason per item in request order ("None" without a
// message where nothing went wrong).
func TestDDBConflictsWireShapes(t *testing.T) {
	ctx := context.Background()
	r := newConflictRig(t, DDBConflictOptions{KeySchema: map[string][]string{"inv": {"PK", "SK"}}})
	first := r.inFlight(t, func() error {
		return r.transact(ctx, ddbtypes.TransactWriteItem{Update: ddbUpdate("CERT#a", "DEPLOY#1", "HOLD")})
	})
	post := func(op, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.proxyURL, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", ddbTarget+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if crc := resp.Header.Get("X-Amz-Crc32"); crc != strconv.FormatUint(uint64(crc32.ChecksumIEEE(raw)), 10) {
			t.Errorf("%s: X-Amz-Crc32 %q does not match the body", op, crc)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: body %q: %v", op, raw, err)
		}
		return resp, out
	}
	resp, out := post("TransactWriteItems", `{"TransactItems":[
		{"Update":{"TableName":"inv","Key":{"PK":{"S":"CERT#a"},"SK":{"S":"NODE#1"}},"UpdateExpression":"SET v = :v","ExpressionAttributeValues":{":v":{"S":"x"}}}},
		{"Update":{"TableName":"inv","Key":{"SK":{"S":"DEPLOY#1"},"PK":{"S":"CERT#a"}},"UpdateExpression":"SET v = :v","ExpressionAttributeValues":{":v":{"S":"x"}}}}]}`)
	want := map[string]any{
		"__type":  "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
		"CancellationReasons": []any{
			map[string]any{"Code": "None"},
			map[string]any{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
		},
	}
	if resp.StatusCode != http.StatusBadRequest || fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("cancellation: %d %v, want 400 %v", resp.StatusCode, out, want)
	}
	resp, out = post("UpdateItem", `{"TableName":"inv","Key":{"PK":{"S":"CERT#a"},"SK":{"S":"DEPLOY#1"}},"UpdateExpression":"SET v = :v","ExpressionAttributeValues":{":v":{"S":"y"}}}`)
	want = map[string]any{
		"__type":  "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
		"message": "Transaction is ongoing for the item",
	}
	if resp.StatusCode != http.StatusBadRequest || fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("conflict: %d %v, want 400 %v", resp.StatusCode, out, want)
	}
	r.releaseAll()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
