//go:build integration

package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/pipeline"
)

// exportHook runs during ExportCertificate, while the run holds its claim.
type exportHook struct {
	*certs.Client
	during func()
}

func (e *exportHook) Export(ctx context.Context, arn string, pass []byte) (certs.Exported, error) {
	if e.during != nil {
		e.during()
	}
	return e.Client.Export(ctx, arn, pass)
}

// DELETE respects live claims: during an onboarding it is refused (409) and
// the onboarding completes; when the onboarding's claim has lapsed, the
// DELETE wins and the onboarding, which no longer holds the name, writes no
// secret version and sends no command.
func TestDeleteDuringOnboarding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		lease      time.Duration
		wantDelete int
	}{
		{"live claim: DELETE refused", 0, 409},
		// A lease that has already lapsed when taken: the onboarding's
		// claim is as good as a crashed run's.
		{"lapsed claim: DELETE wins, onboarding writes nothing", -time.Minute, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, moto)
			r.launch(2, map[string]string{"env": "prod"})
			arn := r.exportable("shop.example.com")
			parts := NewParts(r.aws, r.cfg)
			hook := &exportHook{Client: parts.ACM}
			p := pipeline.New(hook, parts.Bundles, parts.Inventory, parts.Fleet, pipeline.Config{Region: "us-east-1", Lease: tc.lease})
			h := api.NewHandler(p, parts.Inventory)
			deleted := 0
			hook.during = func() {
				hook.during = nil
				deleted, _ = r.callOn(h, "DELETE", "/certificates/shop-web", "shop-web", "")
			}
			res, err := p.Onboard(r.ctx, specOf(t, onboardBody(arn, "shop-web")))
			if deleted != tc.wantDelete {
				t.Fatalf("DELETE during the onboarding answered %d, want %d", deleted, tc.wantDelete)
			}
			c := r.counts()
			switch tc.wantDelete {
			case 409:
				if err != nil || res.CommandID == "" {
					t.Fatalf("onboarding after a refused DELETE: %+v, %v", res, err)
				}
				consistent(t, r, "shop-web", 0)
			case 200:
				if !errors.Is(err, pipeline.ErrBusy) {
					t.Fatalf("onboarding after the DELETE: %v, want ErrBusy", err)
				}
				if c.versions != 0 || c.commands != 0 || c.items != 0 {
					t.Fatalf("the deleted name's onboarding wrote: %+v", c)
				}
			}
		})
	}
}
