package renewal

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
)

// Advice texts, following ACM's renewal rules (see the design brief's "ACM
// facts"): DNS-validated certificates renew on their own while their CNAME
// records stay; EMAIL-validated ones need a person or an HTTPS answer;
// private-CA ones need a usable CA.
const (
	adviceEmail = "Approve the validation email ACM sent to the domain's contacts (WHOIS contacts and admin@, administrator@, hostmaster@, postmaster@, webmaster@ of the domain) before the certificate expires."
	adviceToDNS = "Stop depending on email: request a new certificate for the same names with DNS validation and Options.Export=ENABLED, onboard it (DELETE /certificates/{name}, then POST it under the same name), and delete the old certificate once nothing uses it. DNS-validated certificates renew on their own while their CNAME records stay in place."
	adviceDNS   = "Check that the CNAME validation records ACM gave for every domain of the certificate still exist in DNS (DescribeCertificate -> DomainValidationOptions[].ResourceRecord); ACM renews as soon as it sees them."
	adviceHTTP  = "Check that the HTTP validation redirects ACM gave (DomainValidationOptions[].HttpRedirect) are still served."
	adviceCA    = "Check the private CA that issued the certificate: it must be ACTIVE and valid beyond the new certificate's end date, and ACM must be allowed to issue from it (an AWS Private CA permission for acm.amazonaws.com)."
	adviceCAA   = "Allow Amazon in the domain's CAA records (amazon.com, amazontrust.com, awstrust.com or amazonaws.com), or remove the CAA records that exclude it."
	adviceAuto  = "Once ACM issues the renewed certificate, certferry deploys it on its own (ACM Certificate Available or AWS Health event, or the daily sweep)."

	adviceRevoked          = "Revocation is permanent for this certificate ARN: ACM will not renew it, and clients that check revocation reject it."
	adviceRevokedReplace   = "Request a replacement certificate in ACM (DNS validation with Options.Export=ENABLED, or issue one from your private CA), then rebind every name listed: DELETE /certificates/{name}, then POST /certificates with the new ARN under the same name."
	adviceRevokedMeanwhile = "Until then the nodes listed keep serving the revoked certificate: certferry no longer deploys it (ACM reports it REVOKED)."
)

// advise returns an alert's title, facts and advice.
func advise(ev events.Event, info certs.Info, domain string, days *int, deployed []string) (title string, facts, advice []string) {
	what := cmp.Or(domain, info.ARN)
	daysText := ""
	if days != nil {
		daysText = fmt.Sprintf(" (%d days left)", *days)
	}
	switch ev.Kind {
	case events.KindActionRequired:
		title = "ACM cannot renew " + what + " without you" + daysText
	case events.KindApproachingExpiry:
		title = what + " is approaching expiry" + daysText
	case events.KindExpired:
		title = what + " has expired"
	case events.KindRenewalProblem:
		title = "ACM reports a renewal problem for " + what + daysText
	case events.KindRevoked:
		title = what + " was revoked"
	default:
		title = "certferry: " + string(ev.Kind) + " for " + what
	}

	certType := cmp.Or(info.Type, ev.CertificateType)
	methods := info.ValidationMethods
	if len(methods) == 0 && ev.ValidationMethod != "" {
		methods = []string{ev.ValidationMethod}
	}
	reason := cmp.Or(info.RenewalReason, ev.RenewalReason)
	if certType != "" {
		facts = append(facts, "Type: "+certType)
	}
	if len(methods) > 0 {
		facts = append(facts, "Validation: "+strings.Join(methods, ", "))
	}
	if info.Status != "" {
		facts = append(facts, "ACM status: "+info.Status)
	}
	if info.RenewalEligibility != "" {
		facts = append(facts, "Renewal eligibility: "+info.RenewalEligibility)
	}
	if info.RenewalStatus != "" {
		facts = append(facts, "Renewal status: "+info.RenewalStatus+prefix(": ", reason))
	} else if reason != "" {
		facts = append(facts, "Renewal status reason: "+reason)
	}
	if ev.Description != "" {
		facts = append(facts, "AWS Health says: "+ev.Description)
	}
	if ev.Kind == events.KindRevoked {
		return title, facts, []string{adviceRevoked, adviceRevokedReplace, adviceRevokedMeanwhile}
	}

	// ACM already holds a newer certificate than certferry deployed: the
	// cure is a deployment, not a renewal.
	renewedNotDeployed := info.Serial != "" && info.Status == "ISSUED" && slices.ContainsFunc(deployed, func(s string) bool { return s != info.Serial })
	if renewedNotDeployed && ev.Kind != events.KindExpired {
		advice = append(advice, fmt.Sprintf("ACM already holds a renewed certificate (serial %s) that has not reached every name yet; certferry's sweep deploys it, or deploy now: POST /certificates/{name}/deployments.", info.Serial))
		return title, facts, advice
	}

	if ev.Kind == events.KindExpired {
		advice = append(advice, "The nodes listed serve an expired certificate and clients reject it. Issue a replacement now (request a DNS-validated certificate with export enabled, or issue one from your private CA), then DELETE /certificates/{name} and onboard the new ARN under the same name.")
	}
	switch {
	case strings.HasPrefix(reason, "PCA_") || certType == "PRIVATE":
		advice = append(advice, adviceCA)
	case reason == "CAA_ERROR" || ev.HealthCode == events.HealthCAACheckFailure:
		advice = append(advice, adviceCAA)
	}
	if info.RenewalEligibility == "INELIGIBLE" {
		advice = append(advice, "ACM reports the certificate INELIGIBLE for managed renewal; it will not renew on its own. Issue a replacement and onboard it.")
	}
	if slices.Contains(methods, "EMAIL") {
		advice = append(advice, adviceEmail, adviceToDNS)
	}
	if slices.Contains(methods, "DNS") {
		advice = append(advice, adviceDNS)
	}
	if slices.Contains(methods, "HTTP") {
		advice = append(advice, adviceHTTP)
	}
	if len(advice) == 0 {
		advice = append(advice, "Check the certificate's renewal status in ACM (DescribeCertificate -> RenewalSummary) and resolve what it reports.")
	}
	if ev.Kind != events.KindExpired {
		advice = append(advice, adviceAuto)
	}
	return title, facts, advice
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
