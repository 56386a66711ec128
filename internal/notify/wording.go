package notify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/probe"
	"github.com/certferry/certferry/internal/spec"
)

// All of certferry's alert wording lives in this file: the renewal
// handler, the tracker and the sweeper decide when to alert and gather the
// facts; the functions below turn those facts into an Alert. Golden texts
// in testdata/ pin every message (go test ./internal/notify -update
// rewrites them after a deliberate change).

// Advice texts, following ACM's renewal rules (design brief, "ACM facts";
// ACM User Guide, "Managed certificate renewal"): DNS-validated
// certificates renew on their own while their CNAME records stay;
// EMAIL-validated ones need a person or an HTTPS answer; private-CA ones
// need a usable CA.
const (
	AdviceEmail = "Approve the validation email ACM sent to the domain's contacts (WHOIS contacts and admin@, administrator@, hostmaster@, postmaster@, webmaster@ of the domain) before the certificate expires."
	AdviceToDNS = "Stop depending on email: request a new certificate for the same names with DNS validation and Options.Export=ENABLED, onboard it (DELETE /certificates/{name}, then POST it under the same name), and delete the old certificate once nothing uses it. DNS-validated certificates renew on their own while their CNAME records stay in place."
	AdviceDNS   = "Check that the CNAME validation records ACM gave for every domain of the certificate still exist in DNS (DescribeCertificate -> DomainValidationOptions[].ResourceRecord); ACM renews as soon as it sees them."
	AdviceHTTP  = "Check that the HTTP validation redirects ACM gave (DomainValidationOptions[].HttpRedirect) are still served."
	AdviceCA    = "Check the private CA that issued the certificate: it must be ACTIVE and valid beyond the new certificate's end date, and ACM must be allowed to issue from it (an AWS Private CA permission for acm.amazonaws.com)."
	AdviceCAA   = "Allow Amazon in the domain's CAA records (amazon.com, amazontrust.com, awstrust.com or amazonaws.com), or remove the CAA records that exclude it."
	AdviceAuto  = "Once ACM issues the renewed certificate, certferry deploys it on its own (ACM Certificate Available or AWS Health event, or the daily sweep)."

	AdviceRevoked          = "Revocation is permanent for this certificate ARN: ACM will not renew it, and clients that check revocation reject it."
	AdviceRevokedReplace   = "Request a replacement certificate in ACM (DNS validation with Options.Export=ENABLED, or issue one from your private CA), then move every name listed to it: certferry rebind NAME --arn NEW_ARN (POST /certificates/{name}/rebind {\"certificateArn\": NEW_ARN}), which deploys it at once, bypassing maintenance windows and approval."
	AdviceRevokedMeanwhile = "Until then the nodes listed keep serving the revoked certificate: certferry no longer deploys it (ACM reports it REVOKED), stopped its deployments, and shows the names at risk (certferry status)."

	// AdviceImported: ACM does not renew imported certificates ("Managed
	// certificate renewal": NOT ELIGIBLE if imported).
	AdviceImported = "ACM never renews an imported certificate (it is INELIGIBLE for managed renewal): request a replacement in ACM (DNS validation with Options.Export=ENABLED, or from your private CA) and onboard it under the same name."
	// AdviceExpiredIneligible: "Managed certificate renewal": NOT ELIGIBLE
	// if already expired.
	AdviceExpiredIneligible = "ACM never renews an expired certificate (it is INELIGIBLE for managed renewal): request a replacement and onboard it under the same name."
)

// eligibilityRule is the ACM rule an exportable certificate's renewal
// eligibility follows (ACM User Guide, "Managed certificate renewal":
// "ELIGIBLE if exported since being issued or last renewed").
const eligibilityRule = "ACM counts an exportable certificate ELIGIBLE for managed renewal once it has been exported since it was issued or last renewed, or is used by another AWS service (ACM User Guide, \"Managed certificate renewal\")"

// CertEvent is what the renewal handler knows about one certificate an
// ACM or AWS Health event names.
type CertEvent struct {
	ARN   string // the certificate the alert is about
	Event events.Event
	Info  certs.Info // DescribeCertificate's answer; only ARN set when the call failed
	Names []Name     // the certferry names bound to the certificate
	Now   time.Time
}

// deployedSerials are the serials certferry exported for the names.
func (in CertEvent) deployedSerials() []string {
	var s []string
	for _, n := range in.Names {
		if n.Serial != "" {
			s = append(s, n.Serial)
		}
	}
	return s
}

// header fills the certificate lines every certificate alert carries.
func (in CertEvent) header() Alert {
	ev, info := in.Event, in.Info
	a := Alert{Kind: string(ev.Kind), CertificateARN: in.ARN, EventID: ev.ID,
		Domain: cmp.Or(info.DomainName, ev.CommonName), Names: in.Names}
	switch {
	case !info.NotAfter.IsZero():
		a.NotAfter = info.NotAfter.Format(time.RFC3339)
		d := certs.DaysLeft(info.NotAfter, in.Now)
		a.DaysToExpiry = &d
	case !ev.ExpiresAt.IsZero():
		a.NotAfter = ev.ExpiresAt.Format(time.RFC3339)
		d := certs.DaysLeft(ev.ExpiresAt, in.Now)
		a.DaysToExpiry = &d
	case ev.DaysToExpiry != nil:
		d := *ev.DaysToExpiry
		a.DaysToExpiry = &d
	}
	return a
}

// validation is the one fact the alert's validation line and its advice
// both come from: what ACM reports now, else what the event said.
func (in CertEvent) validation() (methods []string, line string) {
	fromEvent := in.Event.ValidationMethod
	methods = in.Info.ValidationMethods
	switch {
	case len(methods) == 0 && fromEvent != "":
		return []string{fromEvent}, "Validation: " + fromEvent + " (from the event; ACM's details were not read)"
	case len(methods) == 0:
		return nil, ""
	}
	line = "Validation: " + strings.Join(methods, ", ")
	if fromEvent != "" && !slices.Contains(methods, fromEvent) {
		line += " (as ACM reports it now; the event said " + fromEvent + ")"
	}
	return methods, line
}

// ForEvent composes the alert for an ACM or AWS Health event that needs a
// person: renewal action required, approaching expiry, expired, renewal
// problem, revoked. extra facts follow ACM's (the revoked handler's
// account of each name).
func ForEvent(in CertEvent, extra ...string) Alert {
	a := in.header()
	a.Title, a.Facts, a.Advice = in.advise(a.Domain, a.DaysToExpiry)
	a.Facts = append(a.Facts, extra...)
	return a
}

// DeploymentBlocked composes the alert for names whose renewed
// certificate cannot be deployed (gone, not issued, not exportable);
// blocked holds one "name: reason" line each.
func DeploymentBlocked(in CertEvent, blocked []string) Alert {
	a := in.header()
	_, a.Facts, _ = in.advise(a.Domain, a.DaysToExpiry)
	a.Kind = "deployment-blocked"
	a.Title = "certferry cannot deploy " + cmp.Or(a.Domain, a.CertificateARN)
	a.Facts = append(a.Facts, blocked...)
	a.Advice = []string{
		"Fix the certificate in ACM (it must be ISSUED and exportable), then redeploy: POST /certificates/{name}/deployments.",
		"If the certificate was replaced by a new ARN, DELETE /certificates/{name} and onboard the new ARN under the same name.",
	}
	return a
}

// advise returns a certificate alert's title, facts and advice.
func (in CertEvent) advise(domain string, days *int) (title string, facts, advice []string) {
	ev, info := in.Event, in.Info
	what := cmp.Or(domain, in.ARN)
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
	methods, validationLine := in.validation()
	reason := cmp.Or(info.RenewalReason, ev.RenewalReason)
	deployed := in.deployedSerials()
	exportedCurrent := info.Serial != "" && slices.Contains(deployed, info.Serial)
	expired := !info.NotAfter.IsZero() && !in.Now.Before(info.NotAfter)
	if certType != "" {
		facts = append(facts, "Type: "+certType)
	}
	if validationLine != "" {
		facts = append(facts, validationLine)
	}
	if info.Status != "" {
		facts = append(facts, "ACM status: "+info.Status)
	}
	ineligible := info.RenewalEligibility == "INELIGIBLE"
	switch {
	case !ineligible && info.RenewalEligibility != "":
		facts = append(facts, "Renewal eligibility: "+info.RenewalEligibility)
	case ineligible && certType == "IMPORTED":
		facts = append(facts, "Renewal eligibility: INELIGIBLE (ACM does not renew imported certificates)")
	case ineligible && expired:
		facts = append(facts, "Renewal eligibility: INELIGIBLE (ACM does not renew expired certificates)")
	case ineligible && exportedCurrent:
		facts = append(facts, "Renewal eligibility: INELIGIBLE as ACM reports it, although certferry has exported the current serial "+info.Serial+". "+eligibilityRule+"; ACM may not have counted the export yet")
	case ineligible:
		facts = append(facts, "Renewal eligibility: INELIGIBLE as ACM reports it, which is normal for a certificate just issued or renewed and not exported yet: certferry has not exported the current serial"+prefixed(" ", info.Serial)+" yet, and its next deployment does. "+eligibilityRule)
	}
	if info.RenewalStatus != "" {
		facts = append(facts, "Renewal status: "+info.RenewalStatus+prefixed(": ", reason))
	} else if reason != "" {
		facts = append(facts, "Renewal status reason: "+reason)
	}
	if ev.Description != "" {
		facts = append(facts, "AWS Health says: "+ev.Description)
	}
	if ev.Kind == events.KindRevoked {
		return title, facts, []string{AdviceRevoked, AdviceRevokedReplace, AdviceRevokedMeanwhile}
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
		advice = append(advice, AdviceCA)
	case reason == "CAA_ERROR" || ev.HealthCode == events.HealthCAACheckFailure:
		advice = append(advice, AdviceCAA)
	}
	switch {
	case !ineligible:
	case certType == "IMPORTED":
		advice = append(advice, AdviceImported)
	case expired:
		if ev.Kind != events.KindExpired { // the expired advice above says it
			advice = append(advice, AdviceExpiredIneligible)
		}
	case exportedCurrent:
		advice = append(advice, "Read DescribeCertificate -> RenewalEligibility again later: if ACM still reports INELIGIBLE a day after certferry's export, it will not renew the certificate on its own; request a replacement and onboard it under the same name before it expires.")
	}
	if slices.Contains(methods, "EMAIL") {
		advice = append(advice, AdviceEmail, AdviceToDNS)
	}
	if slices.Contains(methods, "DNS") {
		advice = append(advice, AdviceDNS)
	}
	if slices.Contains(methods, "HTTP") {
		advice = append(advice, AdviceHTTP)
	}
	if len(advice) == 0 {
		advice = append(advice, "Check the certificate's renewal status in ACM (DescribeCertificate -> RenewalSummary) and resolve what it reports.")
	}
	if ev.Kind != events.KindExpired {
		advice = append(advice, AdviceAuto)
	}
	return title, facts, advice
}

// Deployment is what the tracker knows when a deployment finishes.
type Deployment struct {
	Name           string
	DeploymentID   string
	Trigger        inventory.Trigger
	Serial         string
	CommandID      string
	CommandStatus  string
	Outcome        inventory.Outcome // succeeded, partial, failed
	Installed      int
	Failed         int
	TimedOut       bool   // SSM sent no final status in time
	CertificateARN string // "" when the inventory holds no certificate item
	Domain         string
	NotAfter       time.Time // zero when unknown
	Nodes          []Node    // the deployment's nodes that did not install
	// Dropped are instance ids of the targets SSM refused as no longer
	// managed: the deployment went on without them.
	Dropped []string
}

// DeploymentFinished composes the alert for a finished deployment.
func DeploymentFinished(d Deployment) Alert {
	a := Alert{
		Kind:  "deployment-" + string(d.Outcome),
		Title: fmt.Sprintf("deployment of %s %s: %d installed, %d failed", d.Name, d.Outcome, d.Installed, d.Failed),
		Facts: []string{
			"Deployment: " + d.DeploymentID + " (trigger " + string(d.Trigger) + ")",
			"Serial: " + d.Serial,
			"SSM command: " + d.CommandID + prefixed(" status ", d.CommandStatus),
		},
		CertificateARN: d.CertificateARN, Domain: d.Domain,
		Names: []Name{{Name: d.Name, Serial: d.Serial, Nodes: d.Nodes, Which: "that did not install"}},
	}
	if !d.NotAfter.IsZero() {
		a.NotAfter = d.NotAfter.UTC().Format(time.RFC3339)
	}
	if d.Failed > 0 {
		a.Advice = []string{
			"Read the failed nodes' output: aws ssm get-command-invocation --command-id " + d.CommandID + " --instance-id <node>.",
			"rolled_back: the node kept its previous certificate (the new one failed the key, config or handshake check); failed: nothing was changed or the node did not run the command.",
			"certferry's sweep sends the install again to failed nodes (with backoff); POST /certificates/" + d.Name + "/deployments sends it to all now.",
		}
	} else if d.Installed == 0 {
		a.Advice = []string{"No managed node matched the targets: check the target tags, that the nodes carry the tag key certferry, and that SSM Agent is online on them."}
	}
	if d.TimedOut {
		a.Facts = append(a.Facts, "SSM sent no final status for the command in time; nodes that never reported are counted as failed and get the install again from the sweep.")
	}
	if len(d.Dropped) > 0 {
		a.Facts = append(a.Facts, fmt.Sprintf("%d instance id(s) of the targets are no longer managed by SSM (terminated or deregistered) and got nothing; the deployment went to the rest: %s.",
			len(d.Dropped), strings.Join(d.Dropped, ", ")))
		a.Advice = append(a.Advice, fmt.Sprintf("Remove them from the name's targets: onboard %s again with the current instance ids only (`certferry onboard --name %s --instance <id> …`, or POST /certificates with the updated InstanceIds target); until then every deployment of %s leaves them out again and says so.",
			d.Name, d.Name, d.Name))
	}
	return a
}

// ProbeCheck is what a probe check found for one name: after a deployment
// (DeploymentID set) or when a waved rollout is done.
type ProbeCheck struct {
	Name                string
	CertificateARN      string
	Domain              string
	DeploymentID        string // "" when not after one deployment
	DeployedSerial      string
	DeployedFingerprint string
	Results             []probe.Result // one per probe target, in the name's order
}

// ProbeAlert composes the alert for a probe check that saw another
// certificate (kind probe-mismatch) or could not probe a target (kind
// probe-unreachable); false when every target served the deployed
// certificate.
func ProbeAlert(in ProbeCheck) (Alert, bool) {
	var mismatched, failed, matched []probe.Result
	for _, r := range in.Results {
		switch {
		case r.Mismatch():
			mismatched = append(mismatched, r)
		case r.Failed():
			failed = append(failed, r)
		default:
			matched = append(matched, r)
		}
	}
	if len(mismatched) == 0 && len(failed) == 0 {
		return Alert{}, false
	}
	a := Alert{CertificateARN: in.CertificateARN, Domain: in.Domain}
	if len(mismatched) > 0 {
		a.Kind = "probe-mismatch"
		a.Title = fmt.Sprintf("probe: %s serves another certificate at %d of %d endpoint(s)", in.Name, len(mismatched), len(in.Results))
	} else {
		a.Kind = "probe-unreachable"
		a.Title = fmt.Sprintf("probe: %s could not be checked at %d of %d endpoint(s)", in.Name, len(failed), len(in.Results))
	}
	a.Facts = append(a.Facts, "Deployed: serial "+cmp.Or(in.DeployedSerial, "unknown")+", SHA-256 "+cmp.Or(in.DeployedFingerprint, "unknown"))
	if in.DeploymentID != "" {
		a.Facts = append(a.Facts, "After deployment "+in.DeploymentID)
	}
	for _, r := range mismatched {
		a.Facts = append(a.Facts, ProbeServedText(r))
	}
	for _, r := range failed {
		a.Facts = append(a.Facts, ProbeFailedText(r))
	}
	if len(matched) > 0 {
		names := make([]string, 0, len(matched))
		for _, r := range matched {
			names = append(names, r.Target)
		}
		a.Facts = append(a.Facts, fmt.Sprintf("Serving the deployed certificate: %s", strings.Join(names, ", ")))
	}
	a.Facts = append(a.Facts, "A probe compares the SHA-256 fingerprint of the leaf certificate the endpoint serves with the deployed one; it does not judge trust (the chain's verification is shown as a fact).")
	if len(mismatched) > 0 {
		a.Advice = append(a.Advice,
			"Find what answers at the address listed: a load balancer, CDN or proxy terminating TLS with its own certificate, a node outside the name's targets, or a server that was not reloaded. Look yourself: openssl s_client -connect <address> -servername <SNI> </dev/null | openssl x509 -noout -fingerprint -sha256 -serial.",
			"If that endpoint should serve the deployed certificate: tag its nodes with the name's targets or install the certificate where TLS terminates, then POST /certificates/"+in.Name+"/deployments.",
			"If the endpoint rightly serves another certificate, remove it from the name's probes (onboard the name again without it).")
	}
	if len(failed) > 0 {
		a.Advice = append(a.Advice,
			"An endpoint that could not be probed is not a mismatch, but nothing is known of what it serves: check that it listens and speaks TLS on that port, and that the probe function can reach it (stack parameters ProbeSubnetIds and ProbeSecurityGroupIds place it in a VPC for private addresses; its security group must allow the outbound connection).")
	}
	return a, true
}

// ProbeServedText says what one endpoint served.
func ProbeServedText(r probe.Result) string {
	var b strings.Builder
	b.WriteString(r.Target)
	if r.Address != "" {
		b.WriteString(" (connected to " + r.Address + prefixed(", SNI ", r.ServerName) + ")")
	}
	s := r.Served
	if s == nil {
		return b.String() + " served nothing"
	}
	fmt.Fprintf(&b, " serves serial %s, SHA-256 %s, subject %s", s.Serial, s.Fingerprint, cmp.Or(s.Subject, "(empty)"))
	if len(s.DNSNames) > 0 {
		b.WriteString(", names " + strings.Join(s.DNSNames, " "))
	}
	fmt.Fprintf(&b, ", issuer %s, expires %s", cmp.Or(s.Issuer, "(empty)"), s.NotAfter.UTC().Format(time.RFC3339))
	if s.Verified {
		b.WriteString("; its chain verifies for " + cmp.Or(r.ServerName, "the address"))
	} else {
		b.WriteString("; its chain does not verify" + prefixed(": ", s.VerifyError))
	}
	return b.String()
}

// ProbeFailedText says why one endpoint could not be probed.
func ProbeFailedText(r probe.Result) string {
	return r.Target + " could not be probed (" + string(r.ErrorKind) + "): " + r.Error
}

// RiskProbeMismatch: the sweep's probe saw another certificate.
func RiskProbeMismatch(r probe.Result, deployedSerial string) string {
	return "probe sees another certificate than the deployed serial " + cmp.Or(deployedSerial, "(unknown)") + ": " + ProbeServedText(r)
}

// RiskProbeFailed: the sweep could not probe an endpoint.
func RiskProbeFailed(r probe.Result) string {
	return "probe " + ProbeFailedText(r)
}

// RiskEmailHTTPS: an EMAIL-validated certificate that neither the
// domain's apex nor its www. name serves over HTTPS. ACM tries to validate
// an email-validated domain automatically by an HTTPS request to the
// domain and to www.<domain> before it renews, and accepts the domain when
// one of them returns the very certificate being renewed; otherwise the
// renewal waits for a person to approve ACM's e-mail (AWS Knowledge
// Center, "How does the ACM managed renewal process work with
// email-validated certificates that use wildcards and subdomains?" and
// "How do I use email to validate my certificate domains during the ACM
// managed renewal process?"; ACM User Guide, "Renewal for domains
// validated by email").
func RiskEmailHTTPS(domain string, results []probe.Result) string {
	seen := make([]string, 0, len(results))
	for _, r := range results {
		switch {
		case r.Failed():
			seen = append(seen, r.Target+": "+string(r.ErrorKind))
		case r.Served != nil:
			seen = append(seen, r.Target+": serial "+r.Served.Serial)
		}
	}
	return fmt.Sprintf("EMAIL validation: neither https://%s nor https://www.%s serves this certificate (%s), so ACM cannot validate the renewal over HTTPS and it will wait for a person to approve ACM's e-mail; serve this certificate on %s or www.%s (port 443), or switch to DNS validation",
		domain, domain, strings.Join(seen, "; "), domain, domain)
}

// SweepName is one name the sweep found at risk.
type SweepName struct {
	Name         string
	DaysToExpiry *int
	Risks        []string // from the Risk* functions below
	Exhausted    []string // nodes out of install attempts
}

// SweepRisks composes the sweep's one alert for the names at risk; false
// when none is.
func SweepRisks(names []SweepName, maxAttempts int) (Alert, bool) {
	a := Alert{Kind: "sweep-risks"}
	atRisk := 0
	for _, n := range names {
		if len(n.Risks) == 0 && len(n.Exhausted) == 0 {
			continue
		}
		atRisk++
		days := "days left unknown"
		if n.DaysToExpiry != nil {
			days = fmt.Sprintf("%d days left", *n.DaysToExpiry)
		}
		line := fmt.Sprintf("%s (%s): %s", n.Name, days, strings.Join(n.Risks, "; "))
		if len(n.Exhausted) > 0 {
			line += fmt.Sprintf("; %d node(s) failed %d times and are no longer retried: %s", len(n.Exhausted), maxAttempts, strings.Join(n.Exhausted, ", "))
		}
		a.Facts = append(a.Facts, line)
	}
	if atRisk == 0 {
		return a, false
	}
	a.Title = fmt.Sprintf("sweep: %d certificate name(s) need attention", atRisk)
	a.Advice = []string{
		"EMAIL validation: request a DNS-validated replacement with export enabled and onboard it; DNS-validated certificates renew on their own.",
		"INELIGIBLE or a failed renewal: check DescribeCertificate -> RenewalSummary and, for private certificates, the CA's state and permissions.",
		"Nodes out of attempts: read their SSM output, fix the node, then POST /certificates/{name}/deployments.",
	}
	return a, true
}

// The sweep's risk lines, one per thing that may stop a certificate from
// renewing or reaching its nodes in time.

// RiskGone: the certificate no longer exists in ACM.
const RiskGone = "the certificate no longer exists in ACM; nodes keep the last one until it expires"

// RiskEmail: EMAIL validation needs a person at each renewal.
const RiskEmail = "EMAIL validation: renewal needs a person (or an HTTPS answer with this certificate)"

// RiskExpiring: the certificate is inside its renewal window and ACM has
// not renewed it.
func RiskExpiring(notAfter time.Time, window time.Duration) string {
	return fmt.Sprintf("expires %s, inside the %.0f-day renewal window and not renewed", notAfter.Format("2006-01-02"), window.Hours()/24)
}

// RiskIneligible: ACM reports renewal INELIGIBLE, with the rule that makes
// it normal or not.
func RiskIneligible(info certs.Info, now time.Time) string {
	switch {
	case info.Type == "IMPORTED":
		return "ACM reports renewal INELIGIBLE: ACM does not renew imported certificates"
	case !info.NotAfter.IsZero() && !now.Before(info.NotAfter):
		return "ACM reports renewal INELIGIBLE: ACM does not renew expired certificates"
	}
	return "ACM reports renewal INELIGIBLE (ACM renews an exportable certificate only once it has been exported since it was issued or last renewed, which certferry does for each serial it deploys)"
}

// RiskRevoked: ACM reports the certificate REVOKED (through certferry or
// not). Revocation is permanent per ARN ("Revoke a public certificate",
// ACM User Guide), so ACM never renews it: the only way out is another
// certificate and a rebind.
func RiskRevoked(info certs.Info) string {
	what := "revoked"
	if info.RevocationReason != "" {
		what += " (" + info.RevocationReason + ")"
	}
	if !info.RevokedAt.IsZero() {
		what += " on " + info.RevokedAt.UTC().Format("2006-01-02")
	}
	return "the certificate was " + what + ": ACM will never renew it and clients that check revocation reject it; request a replacement and move the name to it with certferry rebind NAME --arn NEW_ARN"
}

// RiskRenewal: ACM's renewal failed or waits for validation.
func RiskRenewal(status, reason string) string {
	if reason == "" {
		return "renewal " + status
	}
	return "renewal " + status + " (" + reason + ")"
}

// RiskUndeployable: ACM holds a serial certferry cannot deploy.
func RiskUndeployable(serial string, err error) string {
	return "ACM holds serial " + serial + " but it cannot be deployed: " + err.Error()
}

// prefixed is p+s, or "" when s is empty.
func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// TargetsText describes a name's targets as SendCommand reads them: tag
// targets ANDed (";"), values ORed (",").
func TargetsText(ts []spec.Target) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, t.Key+"="+strings.Join(t.Values, ","))
	}
	return strings.Join(parts, "; ")
}
