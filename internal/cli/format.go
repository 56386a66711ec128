package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// Output formats of the read verbs (-o).
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

// CheckOutput validates -o.
func CheckOutput(o string) error {
	if o != OutputTable && o != OutputJSON {
		return Usagef("-o %q: want table or json", o)
	}
	return nil
}

// PrintJSON writes v (or raw JSON bytes) indented, with a final newline.
func PrintJSON(w io.Writer, v any) error {
	if raw, ok := v.([]byte); ok {
		var b bytes.Buffer
		if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
			_, err = fmt.Fprintln(w, strings.TrimSpace(string(raw)))
			return err
		}
		b.WriteByte('\n')
		_, err := w.Write(b.Bytes())
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// Short shortens a serial for a table.
func Short(serial string) string {
	switch {
	case serial == "":
		return "-"
	case len(serial) > 16:
		return serial[:16] + "…"
	}
	return serial
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp prints a time as the API and the inventory write it (RFC 3339,
// UTC); the zero time is "".
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Expires is "2026-12-23 (30d)", or "-".
func Expires(notAfter time.Time, now time.Time) string {
	if notAfter.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%dd)", notAfter.Format("2006-01-02"), certs.DaysLeft(notAfter, now))
}

// NodeCounts sorts a name's nodes: installed at the name's serial;
// pending (or installed at an older serial, the new one on its way);
// failed (failed or rolled back).
func NodeCounts(p api.CertPage) (installed, pending, failed int) {
	for _, n := range p.Nodes {
		switch {
		case n.State == inventory.NodeInstalled && n.Serial == p.Serial:
			installed++
		case n.State == "pending" || n.State == "installed":
			pending++
		default:
			failed++
		}
	}
	return
}

func lastDeployment(p api.CertPage) *api.DeploymentView {
	if len(p.Deployments) == 0 {
		return nil
	}
	return &p.Deployments[len(p.Deployments)-1]
}

// StatusTable prints one line per name.
func StatusTable(w io.Writer, pages []api.CertPage, now time.Time) error {
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tDOMAIN\tSERIAL\tEXPIRES\tINSTALLED\tPENDING\tFAILED\tLAST DEPLOYMENT")
	for _, p := range pages {
		in, pend, fail := NodeCounts(p)
		last := "-"
		if d := lastDeployment(p); d != nil {
			last = fmt.Sprintf("%s %s (%s)", stamp(d.CreatedAt), d.Outcome, d.Trigger)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.Name, dash(p.DomainName), Short(p.Serial), Expires(p.NotAfter, now), in, pend, fail, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	atRisk(w, pages)
	return nil
}

// NameStatus prints a name's line, its nodes (pending ones with the
// command they wait for) and what the last command still awaits.
func NameStatus(w io.Writer, p api.CertPage, now time.Time) error {
	if err := StatusTable(w, []api.CertPage{p}, now); err != nil {
		return err
	}
	// Where each node holds it, as `certbot certificates` shows its paths.
	if p.Linux.CertPath != "" || p.Linux.KeystorePath != "" {
		fmt.Fprintf(w, "\nFiles on each Linux node: %s\n", files(p))
	}
	if line := RolloutLine(p.CurrentRollout, now); line != "" {
		fmt.Fprintf(w, "\n%s\n", line)
	}
	fmt.Fprintln(w)
	if err := NodeTable(w, p.Nodes); err != nil {
		return err
	}
	if note := awaiting(p); note != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, note)
	}
	return nil
}

// RolloutLine says where a name's rollout stands: its phase, the wave
// sent, and when a waiting deployment will go (the window or the pause's
// end, and the expiry override that sends it whatever the gates say).
func RolloutLine(r *api.RolloutView, now time.Time) string {
	if r == nil {
		return ""
	}
	b := fmt.Sprintf("Rollout %s of serial %s: %s", r.ID, Short(r.Serial), r.Phase)
	if len(r.Waves) > 0 && r.Wave > 0 {
		b += fmt.Sprintf(", wave %d of %d (%d of %d nodes)", r.Wave, len(r.Waves), r.Waves[min(r.Wave, len(r.Waves))-1], r.Nodes)
	}
	switch r.Phase {
	case inventory.PhaseWaitingWindow:
		b += "; goes at " + when(r.NotBefore, now) + " (maintenance window)"
		if !r.GoBy.IsZero() {
			b += ", at the latest " + when(r.GoBy, now) + " (expiry override)"
		}
	case inventory.PhaseAwaitingApproval:
		b += "; goes once approved (certferry approve NAME)"
		if !r.GoBy.IsZero() {
			b += ", or on its own at " + when(r.GoBy, now) + " (expiry override)"
		}
	case inventory.PhasePaused:
		b += "; next wave at " + when(r.NotBefore, now)
	case inventory.PhaseHalted:
		b += fmt.Sprintf(" since %s; `certferry redeploy NAME` resumes from wave %d", stamp(r.HaltedAt), r.Wave)
	}
	if r.ApprovedBy != "" {
		b += "; approved by " + r.ApprovedBy + " at " + stamp(r.ApprovedAt)
	}
	if r.Reason != "" {
		b += "\n  " + r.Reason
	}
	return b
}

// when is a time and how far from now it is.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Minute)
	if d <= 0 {
		return stamp(t) + " (due)"
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	in := fmt.Sprintf("%dh%02dm", hours, mins)
	if days > 0 {
		in = fmt.Sprintf("%dd%02dh", days, hours)
	}
	return fmt.Sprintf("%s (in %s)", stamp(t), in)
}

// files is where a Linux node installs the name: the format and each path.
func files(p api.CertPage) string {
	l := p.Linux
	format := l.Format
	if format == "" {
		format = "pem"
	}
	out := []string{"format " + format}
	for _, f := range []struct{ k, v string }{{"cert", l.CertPath}, {"key", l.KeyPath}, {"chain", l.ChainPath}, {"keystore", l.KeystorePath}} {
		if f.v != "" {
			out = append(out, f.k+" "+f.v)
		}
	}
	return strings.Join(out, ", ")
}

// NodeTable prints nodes: state, installed serial, the last command sent
// to the node (a pending node waits for it), when, and the error.
func NodeTable(w io.Writer, nodes []api.NodeView) error {
	if len(nodes) == 0 {
		_, err := fmt.Fprintln(w, "no node has reported or been targeted by instance id yet")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "NODE\tSTATE\tSERIAL\tCOMMAND\tUPDATED\tERROR")
	for _, n := range nodes {
		state := n.State
		if n.Unverified {
			state += " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.InstanceID, state, Short(n.Serial), dash(n.LastCommandID), dash(stamp(n.UpdatedAt)), dash(n.Error))
	}
	return tw.Flush()
}

// awaiting says what the last deployment's command still waits for: with
// tag targets SSM alone knows the nodes, which appear as they report.
func awaiting(p api.CertPage) string {
	d := lastDeployment(p)
	if d == nil || d.Outcome != "in_progress" {
		return ""
	}
	reported := d.Counts["installed"] + d.Counts["failed"] + d.Counts["rolled_back"] + d.Counts["superseded"]
	if d.Expected > 0 {
		return fmt.Sprintf("command %s: SSM targeted %d node(s), %d reported so far", d.CommandID, d.Expected, reported)
	}
	if !byInstanceID(p.Targets) {
		return fmt.Sprintf("command %s is running on the nodes of %s; %d reported so far (nodes of tag targets appear as they report)",
			d.CommandID, targetsString(p.Targets), reported)
	}
	return fmt.Sprintf("command %s: %d node(s) pending, %d reported so far", d.CommandID, d.Counts["pending"], reported)
}

func byInstanceID(ts []spec.Target) bool {
	for _, t := range ts {
		if t.Key == spec.TargetInstanceIDs {
			return true
		}
	}
	return false
}

func targetsString(ts []spec.Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Key+"="+strings.Join(t.Values, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// CertDetail prints what `certferry get NAME` shows: the certificate, where
// and how nodes install it, and its deployments.
func CertDetail(w io.Writer, p api.CertPage, now time.Time) error {
	tw := table(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, dash(v)) }
	row("Name", p.Name)
	row("Status", string(p.Status))
	row("Certificate", p.CertificateARN)
	row("Domain", p.DomainName)
	row("Serial", p.Serial)
	row("Fingerprint", p.Fingerprint)
	row("Expires", Expires(p.NotAfter, now))
	if r := p.Revoked; r != nil {
		row("At risk", fmt.Sprintf("certificate revoked (%s) at %s by %s; rebind it: certferry rebind %s --arn NEW_ARN", dash(r.Reason), r.At.UTC().Format(time.RFC3339), dash(r.By), p.Name))
	}
	row("Targets", targetsString(p.Targets))
	l := p.Linux
	row("Files", files(p))
	var owner []string
	for _, f := range []struct{ k, v string }{{"owner", l.Owner}, {"group", l.Group}, {"cert mode", l.CertMode}, {"key mode", l.KeyMode}} {
		if f.v != "" {
			owner = append(owner, f.k+" "+f.v)
		}
	}
	row("Ownership", strings.Join(owner, ", "))
	row("Reload", l.ReloadService)
	verify := ""
	if l.VerifyPort != nil {
		addr := l.VerifyAddress
		if addr == "" {
			addr = "127.0.0.1"
		}
		verify = fmt.Sprintf("%s port %d", addr, *l.VerifyPort)
		if l.ServerName != "" {
			verify += " (SNI " + l.ServerName + ")"
		}
		if l.Starttls != "" {
			verify += " STARTTLS " + l.Starttls
		}
	}
	row("Verify", verify)
	if p.Windows.Store != "" || p.Windows.IISSite != "" {
		row("Windows", strings.TrimSpace(p.Windows.Store+" "+p.Windows.IISSite))
	}
	for _, o := range options(p) {
		row(o[0], o[1])
	}
	row("Secret", p.SecretARN)
	row("Updated", stamp(p.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(p.Deployments) == 0 {
		_, err := fmt.Fprintln(w, "no deployment yet")
		return err
	}
	tw = table(w)
	fmt.Fprintln(tw, "DEPLOYMENT\tTRIGGER\tSERIAL\tCOMMAND\tWAVE\tOUTCOME\tINSTALLED\tPENDING\tFAILED")
	for _, d := range p.Deployments {
		wave := "-"
		if d.Waves > 0 {
			wave = fmt.Sprintf("%d/%d", d.Wave, d.Waves)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", stamp(d.CreatedAt), d.Trigger, Short(d.Serial), d.CommandID, wave, d.Outcome,
			d.Counts["installed"], d.Counts["pending"], d.Counts["failed"]+d.Counts["rolled_back"])
	}
	return tw.Flush()
}

// NodeNames prints the names a node has (`status --node ID`).
func NodeNames(w io.Writer, p api.NodePage) error {
	if len(p.Certificates) == 0 {
		_, err := fmt.Fprintf(w, "node %s has no certferry certificate (or has not reported yet: nodes of tag targets appear once they report)\n", p.InstanceID)
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "NAME\tSTATE\tSERIAL\tCOMMAND\tUPDATED\tERROR")
	for _, c := range p.Certificates {
		state := c.State
		if c.Unverified {
			state += " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, state, Short(c.Serial), dash(c.LastCommandID), dash(stamp(c.UpdatedAt)), dash(c.Error))
	}
	return tw.Flush()
}

// options are the rows of the rollout and lifecycle options that are set,
// windows spelled as --window takes them.
func options(p api.CertPage) [][2]string {
	var out [][2]string
	if r := p.Rollout; r != nil {
		var parts []string
		if len(r.Waves) > 0 {
			parts = append(parts, "waves "+strings.Join(r.Waves, ","))
		}
		if r.PauseMinutes > 0 {
			parts = append(parts, fmt.Sprintf("pause %d min", r.PauseMinutes))
		}
		if r.StopAlarm != "" {
			parts = append(parts, fmt.Sprintf("stop alarm %q", r.StopAlarm))
		}
		out = append(out, [2]string{"Rollout", strings.Join(parts, ", ")})
	}
	if len(p.MaintenanceWindows) > 0 {
		var ws []string
		for _, w := range p.MaintenanceWindows {
			ws = append(ws, WindowString(w))
		}
		out = append(out, [2]string{"Maintenance", strings.Join(ws, "; ")})
	}
	if p.SafetyMarginDays != nil {
		out = append(out, [2]string{"Safety margin", fmt.Sprintf("%d days", *p.SafetyMarginDays)})
	}
	if p.Approval != "" {
		out = append(out, [2]string{"Approval", p.Approval})
	}
	if len(p.Probes) > 0 {
		out = append(out, [2]string{"Probes", strings.Join(p.Probes, " ")})
	}
	return out
}
