package localenv

import (
	"net/http"

	"github.com/certferry/certferry/internal/acmstandin"
)

// ACMChainStandIn wraps one SDK client's transport with the ACM chain
// stand-in (acmstandin.Chain: every chain issues its leaf, as AWS's do).
// Other processes do not see it; Proxy serves the stand-ins to every
// process pointed at it.
func ACMChainStandIn(next http.RoundTripper) http.RoundTripper {
	return acmstandin.Transport(next, acmstandin.NewChain().Layer)
}
