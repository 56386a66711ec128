package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// An onboarding that would change a name's certificate by accident is
// still refused (409 NameTaken), and the refusal says how to do it on
// purpose: rebind (issue 14).
func TestNameTakenPointsAtRebind(t *testing.T) {
	r := newRig(t)
	other := strings.Replace(arn, "1111", "9999", 1)
	r.inv.cert = &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: other}}
	_, err := r.p.Onboard(context.Background(), onboardSpec())
	var de *spec.DomainError
	if !errors.Is(err, ErrNameTaken) || !errors.As(err, &de) || de.Field != "name" {
		t.Fatalf("error %v, want NameTaken on name", err)
	}
	for _, want := range []string{"certferry rebind shop-web --arn " + arn, "POST /certificates/shop-web/rebind", other} {
		if !strings.Contains(de.Message, want) {
			t.Errorf("message %q lacks %q", de.Message, want)
		}
	}
}
