package renewal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
)

// "ACM Certificate Rotated" is handled like "ACM Certificate Available":
// every bound name whose serial changed is deployed, no alert.
func TestRotatedDeploysLikeAvailable(t *testing.T) {
	f := newFake()
	out, err := f.handler().Handle(context.Background(), sample(t, "renewal-rotated.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != StatusDone || len(out.Deployed) != 2 || len(f.published) != 0 ||
		!slices.Equal(f.synced, []string{"shop-web", "shop-admin"}) || f.triggers[0] != "acm-event" {
		t.Fatalf("outcome %+v, synced %v, %d alerts", out, f.synced, len(f.published))
	}
}

// "ACM Certificate Revoked": one alert per certificate naming every bound
// name and its nodes and what to do; the revoked certificate is not
// deployed (ACM reports it REVOKED, which the pipeline refuses), and a newer
// serial ACM already holds is deployed at once.
func TestRevokedAlertsAndStopsDeploying(t *testing.T) {
	tests := []struct {
		name         string
		syncFn       func(string) (pipeline.Result, error)
		wantDeployed []string
		wantFacts    []string
	}{
		{name: "ACM has no newer certificate", syncFn: func(string) (pipeline.Result, error) {
			return pipeline.Result{}, fmt.Errorf("%w: %s has status REVOKED", certs.ErrNotIssued, arn)
		}, wantFacts: []string{"shop-web: not deployed", "shop-admin: not deployed"}},
		{name: "ACM already holds a newer serial", syncFn: func(name string) (pipeline.Result, error) {
			return pipeline.Result{Name: name, Serial: "0c", CommandID: "cmd-" + name}, nil
		}, wantDeployed: []string{"shop-web", "shop-admin"}, wantFacts: []string{"shop-web: newer serial 0c deployed (command cmd-shop-web)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.info.Status = "REVOKED"
			f.syncFn = tc.syncFn
			out, err := f.handler().Handle(context.Background(), sample(t, "renewal-revoked.json"))
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != StatusDone || len(f.published) != 1 || len(out.Alerts) != 1 {
				t.Fatalf("outcome %+v, %d alerts", out, len(f.published))
			}
			var deployed []string
			for _, d := range out.Deployed {
				deployed = append(deployed, d.Name)
			}
			if !slices.Equal(deployed, tc.wantDeployed) {
				t.Fatalf("deployed %v, want %v", deployed, tc.wantDeployed)
			}
			a := f.published[0]
			if a.Kind != "certificate-revoked" || a.Title != "shop.example.com was revoked" || a.CertificateARN != arn {
				t.Fatalf("alert %+v", a)
			}
			text := a.Text()
			for _, want := range append([]string{"shop-web", "shop-admin", "i-0aaa", "mi-0bbb", "i-0ccc", arn,
				"Revocation is permanent for this certificate ARN", "Request a replacement certificate",
				"certferry rebind NAME --arn NEW_ARN", "POST /certificates/{name}/rebind"}, tc.wantFacts...) {
				if !strings.Contains(text, want) {
					t.Errorf("message lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "deployment-blocked") || strings.Contains(text, notify.AdviceAuto) {
				t.Errorf("revoked alert carries renewal advice:\n%s", text)
			}
			if again, _ := f.handler().Handle(context.Background(), sample(t, "renewal-revoked.json")); again.Status != StatusDuplicate || len(f.published) != 1 {
				t.Fatalf("redelivery published again: %+v", again)
			}
		})
	}
}
