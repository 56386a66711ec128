package testkit

import "github.com/certferry/certferry/internal/acmstandin"

// UseACMStandIns mounts the rig's ACM stand-ins on p (a FaultProxy, e.g.
// Rig.NewFaultProxy, so the model check still sees every request first):
// acmstandin.Renewals (RenewCertificate, which moto lacks) and, outside it,
// acmstandin.Chain (chains that issue their leaf). Mount them before the
// first export: Renewals counts only the exports it sees.
func UseACMStandIns(p *FaultProxy) (*acmstandin.Renewals, *acmstandin.Chain) {
	r, c := acmstandin.NewRenewals(), acmstandin.NewChain()
	p.Use(r.Layer) // layers added later run first: Chain(Renewals(…))
	p.Use(c.Layer)
	return r, c
}
