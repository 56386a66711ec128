package testkit

import "github.com/certferry/certferry/internal/acmstandin"

// UseACMRevocations mounts acmstandin.Revocations (RevokeCertificate,
// which moto lacks) on p outside every layer mounted before it: call it
// after UseACMStandIns (Revocations(Chain(Renewals(…)))), and before the
// first export, which it must see to allow a revocation.
func UseACMRevocations(p *FaultProxy) *acmstandin.Revocations {
	r := acmstandin.NewRevocations()
	p.Use(r.Layer)
	return r
}
