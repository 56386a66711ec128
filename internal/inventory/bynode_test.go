package inventory

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A GET /nodes/{id} token continues only that node's NODE items.
func TestDecodeNodeToken(t *testing.T) {
	const id = "i-0123456789abcdef0"
	tok := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	good := tok(nodePageKey{InstanceID: id, PK: "CERT#shop-web", SK: "NODE#" + id})
	if k, err := decodeNodeToken(id, good); err != nil || k["PK"] == nil || len(k) != 3 {
		t.Fatalf("good token: %v %v", k, err)
	}
	for name, token := range map[string]string{
		"another node":   good,
		"not base64":     "!!",
		"not a key":      tok(map[string]string{"x": "y"}),
		"extra field":    tok(map[string]string{"instanceId": id, "PK": "CERT#a", "SK": "NODE#" + id, "more": "x"}),
		"deploy item":    tok(nodePageKey{InstanceID: id, PK: "CERT#shop-web", SK: "DEPLOY#x"}),
		"event item":     tok(nodePageKey{InstanceID: id, PK: "EVENT#x", SK: "NODE#" + id}),
		"too long":       strings.Repeat("a", maxTokenLength+1),
		"sk of another":  tok(nodePageKey{InstanceID: id, PK: "CERT#a", SK: "NODE#i-0123456789abcdef1"}),
		"empty instance": tok(nodePageKey{PK: "CERT#a", SK: "NODE#"}),
	} {
		want := id
		if name == "another node" {
			want = "i-0123456789abcdef1"
		}
		if _, err := decodeNodeToken(want, token); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v, want ErrBadToken", name, err)
		}
	}
}
