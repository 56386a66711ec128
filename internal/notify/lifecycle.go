package notify

import (
	"fmt"
	"time"
)

// Operator actions (rotate, revoke, approve, rebind, delete): one alert
// each, naming who acted (the caller's IAM ARN, or local:<user> for the
// handler run in the operator's process) and when.

// Action is an operator action to announce.
type Action struct {
	Name     string // the name the action was requested on
	ARN      string // the certificate acted on
	Domain   string
	NotAfter time.Time
	By       string
	At       time.Time
	Names    []Name // every name the action affects (revocation: all bound to the ARN)
	Facts    []string
}

func (a Action) alert(kind, title string, advice ...string) Alert {
	out := Alert{Kind: kind, Title: title, CertificateARN: a.ARN, Domain: a.Domain, Names: a.Names, Advice: advice}
	if !a.NotAfter.IsZero() {
		out.NotAfter = a.NotAfter.UTC().Format(time.RFC3339)
	}
	out.Facts = append([]string{fmt.Sprintf("Requested by %s at %s", a.By, a.At.UTC().Format(time.RFC3339))}, a.Facts...)
	return out
}

// RotationRequested: RenewCertificate accepted a renewal of the name's
// certificate.
func RotationRequested(a Action, charged bool) Alert {
	advice := []string{
		"Nothing to do: ACM renews the certificate under the same ARN and announces it (ACM Certificate Available, action RENEWAL); certferry then deploys it to every name bound to the ARN through each name's waves, maintenance windows and approval.",
		"Follow it with certferry status " + a.Name + ".",
	}
	if charged {
		advice = append(advice, "This is an exportable public certificate: ACM charges for each renewal.")
	}
	return a.alert("rotation-requested", "Renewal of "+a.Name+" requested", advice...)
}

// Revoked: the operator revoked the certificate through certferry; every
// name bound to it is marked at risk and its deployments stopped.
func Revoked(a Action, reason string) Alert {
	al := a.alert("certificate-revoked", a.Name+": certificate revoked ("+reason+")",
		AdviceRevoked, AdviceRevokedReplace, AdviceRevokedMeanwhile)
	al.Facts = append(al.Facts, "Revocation reason: "+reason)
	return al
}

// Approved: a waiting deployment was released.
func Approved(a Action, what string) Alert {
	return a.alert("deployment-approved", "Deployment of "+a.Name+" approved",
		"Nothing to do: "+what+". Follow it with certferry status "+a.Name+".")
}

// Rebound: the name moved to another certificate and deploys it.
func Rebound(a Action, from, how string) Alert {
	al := a.alert("name-rebound", a.Name+" moved to another certificate",
		"Nothing to do: "+how+". Follow it with certferry status "+a.Name+".")
	al.Facts = append(al.Facts, "Previous certificate: "+from)
	return al
}

// Deleted: the name is no longer distributed.
func Deleted(a Action, secretDeletion string) Alert {
	advice := []string{"Nodes keep their certificate files; remove them where they are no longer needed (README runbook)."}
	if secretDeletion != "" {
		advice = append(advice, secretDeletion)
	}
	return a.alert("name-deleted", a.Name+" is no longer distributed", advice...)
}
