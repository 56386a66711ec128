package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The rebind's alert carries what happened: when the deployment after the
// rebind failed, it says so and how to complete it, never "Nothing to do:
// deployed at once" (the API answers the failure; the alert's readers see
// only the alert).
func TestRebindAlertSaysDeploymentFailed(t *testing.T) {
	for _, urgent := range []bool{false, true} {
		w := newWorld()
		if urgent {
			old := issued(arnA, "AMAZON_ISSUED", "ENABLED")
			old.Status = "EXPIRED"
			w.acm.infos[arnA] = old
		}
		w.deployErr = errors.New("SendCommand throttled")
		if _, err := w.svc.Rebind(context.Background(), "shop-web", arnB, alice); !errors.Is(err, ErrDeployAfterRebind) {
			t.Fatalf("urgent %v: error %v", urgent, err)
		}
		if len(w.pub.alerts) != 1 {
			t.Fatalf("urgent %v: %d alerts", urgent, len(w.pub.alerts))
		}
		text := w.pub.alerts[0].Text()
		if strings.Contains(text, "Nothing to do") {
			t.Errorf("urgent %v: alert says nothing to do although the deployment failed:\n%s", urgent, text)
		}
		for _, want := range []string{"did not go out", "certferry redeploy shop-web"} {
			if !strings.Contains(text, want) {
				t.Errorf("urgent %v: alert lacks %q:\n%s", urgent, want, text)
			}
		}
	}
	// A rebind whose deployment went out still says nothing is to be done.
	w := newWorld()
	if _, err := w.svc.Rebind(context.Background(), "shop-web", arnB, alice); err != nil {
		t.Fatal(err)
	}
	if text := w.pub.alerts[0].Text(); !strings.Contains(text, "Nothing to do") {
		t.Errorf("successful rebind's alert:\n%s", text)
	}
}
