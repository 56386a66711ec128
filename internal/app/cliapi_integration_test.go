//go:build integration

package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/testkit"
)

// client is the CLI's API client on the rig's handler (what `certferry`
// without -api runs).
func (r *rig) client() cli.Client { return cli.Client{Call: cli.HandlerCaller(r.handler)} }

func apiStatus(err error) int {
	var ae *cli.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// A redeploy with instanceIds sends one command to exactly those nodes
// (the SSM stand-in records the targets as AWS runs them); a node that is
// not the name's is refused with 400 and nothing is sent or written. GET
// /nodes/{id} then shows every name the node has, with its last command,
// from the instanceId-index, page by page; after the node reports, its
// installed serial.
func TestRedeployNodesAndNodeView(t *testing.T) {
	r := newSSMRig(t)
	tags := map[string]string{"env": "prod"}
	ids := r.launch(3, tags)
	for _, id := range ids {
		r.nodes.Register(testkit.SSMNode{InstanceID: id, Platform: "Linux", Tags: tags})
	}
	c := r.client()
	arn := r.exportable("shop.example.com")
	// shop-web by tag (nodes appear as they report), api by instance ids
	// (pending NODE items at once).
	if status, ans := r.post(onboardBody(arn, "shop-web")); status != 202 {
		t.Fatalf("onboard shop-web: %d %v", status, ans)
	}
	body := fmt.Sprintf(`{"certificateArn": %q, "name": "api", "targets": [{"key": "InstanceIds", "values": [%q, %q]}]}`, arn, ids[0], ids[1])
	if status, ans := r.post(body); status != 202 {
		t.Fatalf("onboard api: %d %v", status, ans)
	}
	shop := r.cert("shop-web")
	r.postResult(shop.LastCommandID, ids[0], testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", shop.Fingerprint, shop.Serial, "ok")})
	r.mustTrack("tracker-invocation-success.json", shop.LastCommandID, ids[0])

	// GET /nodes/{id}: both names, by name; one per page with limit=1.
	view, err := c.Node(r.ctx, ids[0])
	if err != nil || len(view.Certificates) != 2 {
		t.Fatalf("node view: %+v %v", view, err)
	}
	apiCert := r.cert("api")
	if a, s := view.Certificates[0], view.Certificates[1]; a.Name != "api" || a.State != "pending" || a.LastCommandID != apiCert.LastCommandID ||
		s.Name != "shop-web" || s.State != "installed" || s.Serial != shop.Serial || s.LastCommandID != shop.LastCommandID {
		t.Fatalf("node view %+v", view.Certificates)
	}
	status, page := r.callNode(ids[0], "limit=1")
	if status != 200 || len(page["certificates"].([]any)) != 1 || page["next"] == nil {
		t.Fatalf("first page: %d %v", status, page)
	}
	status, page2 := r.callNode(ids[0], "limit=1&next="+page["next"].(string))
	if status != 200 || len(page2["certificates"].([]any)) != 1 || page2["certificates"].([]any)[0].(map[string]any)["name"] != "shop-web" {
		t.Fatalf("second page: %d %v", status, page2)
	}
	if status, _ := r.callNode(ids[1], "next="+page["next"].(string)); status != 400 {
		t.Fatalf("another node's token: %d, want 400", status)
	}
	if v, err := c.Node(r.ctx, ids[2]); err != nil || len(v.Certificates) != 0 {
		t.Fatalf("node that never reported: %+v %v", v, err)
	}

	// A node of the name (recorded) gets exactly one command for itself.
	before := r.counts()
	if _, err := c.Redeploy(r.ctx, "shop-web", []string{ids[0]}); err != nil {
		t.Fatal(err)
	}
	after := r.cert("shop-web")
	if after.LastCommandID == shop.LastCommandID || r.counts().commands != before.commands+1 {
		t.Fatalf("no new command: %s", after.LastCommandID)
	}
	if got, _ := r.nodes.Targets(after.LastCommandID); !slices.Equal(got, ids[:1]) {
		t.Fatalf("redeploy reached %v, want %v", got, ids[:1])
	}
	if n := r.nodeRecord("shop-web", ids[0]); n.State != inventory.NodePending || n.LastCommandID != after.LastCommandID {
		t.Fatalf("node after the redeploy: %+v", n)
	}
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", after.LastDeploymentID)
	if !slices.Equal(dep.InstanceIDs, ids[:1]) || dep.Trigger != "api" {
		t.Fatalf("deployment %+v", dep)
	}
	// api by instance ids: its listed target that is also a node.
	if _, err := c.Redeploy(r.ctx, "api", []string{ids[1]}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.nodes.Targets(r.cert("api").LastCommandID); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("api redeploy reached %v", got)
	}

	// Refused: a node of the tag that never reported, a bad id, an
	// unknown name. Nothing is sent, nothing written.
	before = r.counts()
	items := r.scanItems()
	for _, tc := range []struct {
		name   string
		ids    []string
		status int
	}{
		{"shop-web", []string{ids[0], ids[2]}, 400},
		{"api", []string{ids[2]}, 400},
		{"shop-web", []string{"i-1; reboot"}, 400},
		{"nope", []string{ids[0]}, 404},
	} {
		if _, err := c.Redeploy(r.ctx, tc.name, tc.ids); apiStatus(err) != tc.status || cli.ExitCode(err) != cli.ExitClient {
			t.Errorf("redeploy %s %v: %v, want %d", tc.name, tc.ids, err, tc.status)
		}
	}
	if r.counts() != before || !slices.Equal(r.scanItems(), items) {
		t.Fatalf("a refused redeploy wrote: %+v → %+v", before, r.counts())
	}
}

// DELETE ?deleteSecret=true removes the name from the inventory, then
// schedules its secret's deletion with the 30-day recovery window; without
// the flag the secret stays; a bad flag writes nothing.
func TestDeleteWithSecret(t *testing.T) {
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	for _, name := range []string{"shop-web", "keep-me"} {
		if status, ans := r.post(onboardBody(arn, name)); status != 202 {
			t.Fatalf("onboard %s: %d %v", name, status, ans)
		}
	}
	c := r.client()
	before := r.counts()
	items := r.scanItems()
	if status, ans := r.call("DELETE", "/certificates/shop-web?deleteSecret=yes", "shop-web", ""); status != 400 {
		t.Fatalf("bad flag: %d %v", status, ans)
	}
	if r.counts() != before || !slices.Equal(r.scanItems(), items) {
		t.Fatal("a refused DELETE wrote")
	}

	raw, err := c.Delete(r.ctx, "keep-me", false)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.describeSecret("keep-me"); d.DeletedDate != nil {
		t.Fatalf("secret of keep-me scheduled without --delete-secret (%s)", raw)
	}

	first, err := c.Delete(r.ctx, "shop-web", true)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Deleted        bool
		SecretDeletion struct {
			RecoveryWindowDays int
			Secrets            []struct{ Name, DeletionDate string }
		}
	}
	if err := json.Unmarshal(first, &ans); err != nil || !ans.Deleted || ans.SecretDeletion.RecoveryWindowDays != 30 ||
		len(ans.SecretDeletion.Secrets) != 1 || ans.SecretDeletion.Secrets[0].Name != r.cfg.SecretPrefix+"shop-web" || ans.SecretDeletion.Secrets[0].DeletionDate == "" {
		t.Fatalf("answer %s", first)
	}
	d := r.describeSecret("shop-web")
	if d.DeletedDate == nil {
		t.Fatal("the secret is not scheduled for deletion")
	}
	if cert, _ := inventory.NewStore(r.ddb, r.cfg.Table).GetCert(r.ctx, "shop-web"); cert != nil {
		t.Fatalf("inventory still holds %+v", cert)
	}
	// The nodes' other names are untouched; a retry of the same request
	// finds the secret scheduled and answers without error.
	retry, err := c.Delete(r.ctx, "shop-web", true)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	t.Logf("retry answered %s", retry)
	if _, err := c.Delete(r.ctx, "never-was", true); apiStatus(err) != 404 {
		t.Fatalf("unknown name: %v, want 404", err)
	}
}

func (r *rig) describeSecret(name string) *secretsmanager.DescribeSecretOutput {
	r.t.Helper()
	d, err := r.sm.DescribeSecret(r.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.cfg.SecretPrefix + name)})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// callNode sends GET /nodes/{id}?query to the handler as API Gateway does.
func (r *rig) callNode(id, query string) (int, map[string]any) {
	r.t.Helper()
	status, raw, err := cli.HandlerCaller(r.handler)(r.ctx, "GET", "/nodes/"+id+"?"+query, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		r.t.Fatalf("answer %q: %v", raw, err)
	}
	return status, out
}

// scanItems is every item of the table, as text, sorted.
func (r *rig) scanItems() []string {
	r.t.Helper()
	sc, err := r.ddb.Scan(r.ctx, &dynamodb.ScanInput{TableName: aws.String(r.cfg.Table)})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, it := range sc.Items {
		var m map[string]any
		if err := attributevalue.UnmarshalMap(it, &m); err != nil {
			r.t.Fatal(err)
		}
		b, _ := json.Marshal(m) // map keys sorted
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}
