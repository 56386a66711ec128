package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/spec"
)

// ACM certificates are regional and per account (a certificate cannot be
// used, exported or described from another account: "Regions and
// accounts", ACM User Guide). A rebind to another account's certificate
// is refused as bad input naming both accounts, before ACM is asked (the
// stack's IAM would answer AccessDenied, a 502 the caller would retry),
// and changes nothing.
func TestRebindOtherAccount(t *testing.T) {
	const foreign = "arn:aws:acm:us-east-1:210987654321:certificate/55555555-2222-3333-4444-555555555555"
	w := newWorld()
	w.acm.infos[foreign] = issued(foreign, "AMAZON_ISSUED", "ENABLED")
	_, err := w.svc.Rebind(context.Background(), "shop-web", foreign, alice)
	var fe *spec.FieldError
	var de *spec.DomainError
	if !(errors.As(err, &fe) && fe.Field == "certificateArn" || errors.As(err, &de) && de.Field == "certificateArn") {
		t.Fatalf("error %v, want a certificateArn field error", err)
	}
	for _, want := range []string{"210987654321", "123456789012"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name account %s", err, want)
		}
	}
	w.nothingHappened(t)
}
