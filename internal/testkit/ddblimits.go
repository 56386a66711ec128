package testkit

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// DynamoDB limits AWS documents outside the API model ("Service, account,
// and table quotas in Amazon DynamoDB", Developer Guide): an item is at
// most 400 KB (attribute names and values, "Item sizes and formats"); a
// partition key value at most 2048 bytes, a sort key value at most 1024
// bytes (the same for a global secondary index's keys). moto enforces
// neither. The rig learns each table's keys from CreateTable.
const (
	ddbItemLimit      = 400 * 1024
	ddbPartitionLimit = 2048
	ddbSortLimit      = 1024
)

type ddbLimits struct {
	mu     sync.Mutex
	tables map[string]map[string]int // table → key attribute → byte limit
}

func (d *ddbLimits) observe(req awsmodel.Request) []awsmodel.Violation {
	in, _ := req.Input.(map[string]any)
	var out []awsmodel.Violation
	bad := func(member, format string, a ...any) {
		out = append(out, awsmodel.Violation{Service: "dynamodb", Operation: req.Operation, Member: member, Constraint: "documented",
			Message: fmt.Sprintf("Value at '%s' failed to satisfy constraint: ", member) + fmt.Sprintf(format, a...)})
	}
	checkItem := func(member, table string, item map[string]any, whole bool) {
		d.mu.Lock()
		keys := d.tables[table]
		d.mu.Unlock()
		names := make([]string, 0, len(item))
		for k := range item {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			limit, ok := keys[k]
			if !ok {
				continue
			}
			if n := avSize(item[k]); n > limit {
				bad(member+"."+k, "key attribute value is %d bytes; DynamoDB allows %d", n, limit)
			}
		}
		if whole {
			if n := ItemSize(item); n > ddbItemLimit {
				bad(member, "item is %d bytes; DynamoDB allows 400 KB (%d)", n, ddbItemLimit)
			}
		}
	}
	switch req.Op() {
	case "dynamodb.CreateTable":
		table, _ := in["TableName"].(string)
		keys := map[string]int{}
		addSchema := func(schema any) {
			list, _ := schema.([]any)
			for _, e := range list {
				k, _ := e.(map[string]any)
				name, _ := k["AttributeName"].(string)
				limit := ddbPartitionLimit
				if k["KeyType"] == "RANGE" {
					limit = ddbSortLimit
				}
				if old, ok := keys[name]; !ok || limit < old {
					keys[name] = limit
				}
			}
		}
		addSchema(in["KeySchema"])
		for _, idx := range []string{"GlobalSecondaryIndexes", "LocalSecondaryIndexes"} {
			list, _ := in[idx].([]any)
			for _, g := range list {
				gm, _ := g.(map[string]any)
				addSchema(gm["KeySchema"])
			}
		}
		d.mu.Lock()
		if d.tables == nil {
			d.tables = map[string]map[string]int{}
		}
		d.tables[table] = keys
		d.mu.Unlock()
	case "dynamodb.PutItem":
		table, _ := in["TableName"].(string)
		item, _ := in["Item"].(map[string]any)
		checkItem("Item", table, item, true)
	case "dynamodb.GetItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem":
		table, _ := in["TableName"].(string)
		key, _ := in["Key"].(map[string]any)
		checkItem("Key", table, key, false)
	case "dynamodb.TransactWriteItems":
		list, _ := in["TransactItems"].([]any)
		for i, e := range list {
			op, _ := e.(map[string]any)
			for kind, body := range op {
				b, _ := body.(map[string]any)
				table, _ := b["TableName"].(string)
				member := fmt.Sprintf("TransactItems.%d.member.%s", i+1, kind)
				if item, ok := b["Item"].(map[string]any); ok {
					checkItem(member+".Item", table, item, true)
				}
				if key, ok := b["Key"].(map[string]any); ok {
					checkItem(member+".Key", table, key, false)
				}
			}
		}
	case "dynamodb.BatchWriteItem":
		reqs, _ := in["RequestItems"].(map[string]any)
		for table, list := range reqs {
			l, _ := list.([]any)
			for i, e := range l {
				w, _ := e.(map[string]any)
				member := fmt.Sprintf("RequestItems.%s.%d.member", table, i+1)
				if p, ok := w["PutRequest"].(map[string]any); ok {
					item, _ := p["Item"].(map[string]any)
					checkItem(member+".PutRequest.Item", table, item, true)
				}
				if dr, ok := w["DeleteRequest"].(map[string]any); ok {
					key, _ := dr["Key"].(map[string]any)
					checkItem(member+".DeleteRequest.Key", table, key, false)
				}
			}
		}
	}
	return out
}

// ItemSize is an item's size as "Item sizes and formats" (DynamoDB
// Developer Guide) counts it: attribute names plus values.
func ItemSize(item map[string]any) int {
	n := 0
	for k, v := range item {
		n += len(k) + avSize(v)
	}
	return n
}

// avSize is the size of one AttributeValue (wire JSON: {"S": "…"}, …).
func avSize(v any) int {
	av, _ := v.(map[string]any)
	n := 0
	for typ, val := range av {
		switch typ {
		case "S":
			s, _ := val.(string)
			n += len(s)
		case "N":
			s, _ := val.(string)
			digits := len(strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(s), "0"))
			n += (digits+1)/2 + 1
		case "B":
			s, _ := val.(string)
			raw, _ := base64.StdEncoding.DecodeString(s)
			n += len(raw)
		case "BOOL", "NULL":
			n++
		case "SS", "NS", "BS":
			list, _ := val.([]any)
			for _, e := range list {
				n += avSize(map[string]any{typ[:1]: e})
			}
		case "L":
			list, _ := val.([]any)
			n += 3
			for _, e := range list {
				n += 1 + avSize(e)
			}
		case "M":
			m, _ := val.(map[string]any)
			n += 3
			for k, e := range m {
				n += 1 + len(k) + avSize(e)
			}
		}
	}
	return n
}
