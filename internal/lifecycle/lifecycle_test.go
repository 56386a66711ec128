package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

const (
	arnA = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	arnB = "arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555"
	arnW = "arn:aws:acm:eu-west-1:123456789012:certificate/33333333-2222-3333-4444-555555555555"
	who  = "arn:aws:iam::123456789012:user/alice"
)

var now = time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)

type fakeStore struct {
	certs     map[string]*inventory.Cert
	audits    []inventory.AuditEntry
	marked    map[string]inventory.Revocation
	rebinds   []string
	rebindErr error
}

func (f *fakeStore) GetCert(_ context.Context, name string) (*inventory.Cert, error) {
	return f.certs[name], nil
}
func (f *fakeStore) Describe(_ context.Context, name string) (*inventory.Detail, error) {
	return &inventory.Detail{Cert: f.certs[name]}, nil
}
func (f *fakeStore) NamesByARN(_ context.Context, arn string) ([]string, error) {
	var out []string
	for n, c := range f.certs {
		if c.CertificateARN == arn {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}
func (f *fakeStore) Audit(_ context.Context, name string, e inventory.AuditEntry) error {
	e.PK = inventory.CertKey(name)
	f.audits = append(f.audits, e)
	return nil
}
func (f *fakeStore) AuditTrail(context.Context, string, int) ([]inventory.AuditEntry, error) {
	return f.audits, nil
}
func (f *fakeStore) MarkRevoked(_ context.Context, name string, r inventory.Revocation) (bool, error) {
	if _, ok := f.marked[name]; ok {
		return false, nil
	}
	f.marked[name] = r
	return true, nil
}
func (f *fakeStore) Rebind(_ context.Context, c *inventory.Cert, arn string) (*inventory.Cert, error) {
	if f.rebindErr != nil {
		return nil, f.rebindErr
	}
	f.rebinds = append(f.rebinds, c.Name+"->"+arn)
	n := *c
	n.CertificateARN, n.Revoked = arn, nil
	return &n, nil
}

type fakeACM struct {
	infos   map[string]certs.Info
	renewed []string
	revoked []string
	err     error
}

func (f *fakeACM) Describe(_ context.Context, arn string) (certs.Info, error) {
	i, ok := f.infos[arn]
	if !ok {
		return certs.Info{}, fmt.Errorf("describe %s: %w", arn, certs.ErrNotFound)
	}
	return i, nil
}
func (f *fakeACM) Renew(_ context.Context, arn string) error {
	f.renewed = append(f.renewed, arn)
	return f.err
}
func (f *fakeACM) Revoke(_ context.Context, arn, reason string) error {
	f.revoked = append(f.revoked, arn+" "+reason)
	return f.err
}

type fakePub struct{ alerts []notify.Alert }

func (f *fakePub) Publish(_ context.Context, a notify.Alert) (string, error) {
	f.alerts = append(f.alerts, a)
	return fmt.Sprintf("msg-%d", len(f.alerts)), nil
}

type recorder struct{ calls []string }

func (r *recorder) Halt(_ context.Context, name, reason string) error {
	r.calls = append(r.calls, "halt "+name)
	return nil
}

type world struct {
	store     *fakeStore
	acm       *fakeACM
	pub       *fakePub
	rec       *recorder
	svc       *Service
	deployErr error
}

func issued(arn, typ, export string) certs.Info {
	return certs.Info{ARN: arn, Status: "ISSUED", Type: typ, ExportOption: export, Serial: "0a", DomainName: "shop.example.com", NotAfter: now.Add(90 * 24 * time.Hour)}
}

func newWorld() *world {
	w := &world{
		store: &fakeStore{certs: map[string]*inventory.Cert{
			"shop-web":   {Spec: spec.Spec{Name: "shop-web", CertificateARN: arnA}, Status: inventory.StatusActive, Serial: "0a", NotAfter: now.Add(90 * 24 * time.Hour), Version: 3},
			"shop-admin": {Spec: spec.Spec{Name: "shop-admin", CertificateARN: arnA}, Status: inventory.StatusActive, Serial: "0a", Version: 2},
		}, marked: map[string]inventory.Revocation{}},
		acm: &fakeACM{infos: map[string]certs.Info{
			arnA: issued(arnA, "AMAZON_ISSUED", "ENABLED"),
			arnB: issued(arnB, "AMAZON_ISSUED", "ENABLED"),
		}},
		pub: &fakePub{}, rec: &recorder{},
	}
	w.svc = New(Config{Store: w.store, ACM: w.acm, Actions: w.acm, Alerts: w.pub, Halter: w.rec, Region: "us-east-1",
		Deployer: DeployFunc(func(_ context.Context, name string, _ inventory.Trigger) (pipeline.Result, error) {
			w.rec.calls = append(w.rec.calls, "deploy "+name)
			return pipeline.Result{Name: name, CommandID: "cmd-1"}, w.deployErr
		}),
		Renewer: RenewFunc(func(_ context.Context, name string, _ inventory.Trigger) (pipeline.Result, error) {
			w.rec.calls = append(w.rec.calls, "renew "+name)
			return pipeline.Result{Name: name, CommandID: "cmd-2"}, w.deployErr
		}),
		Now: func() time.Time { return now },
	})
	return w
}

var alice = caller.Caller{ARN: who, At: now}

// A refused action calls nothing in ACM, writes no audit entry and
// publishes nothing.
func (w *world) nothingHappened(t *testing.T) {
	t.Helper()
	if len(w.acm.renewed)+len(w.acm.revoked)+len(w.store.audits)+len(w.pub.alerts)+len(w.store.rebinds)+len(w.store.marked)+len(w.rec.calls) != 0 {
		t.Fatalf("a refused action changed something: renewed %v revoked %v audits %v alerts %d rebinds %v marked %v calls %v",
			w.acm.renewed, w.acm.revoked, w.store.audits, len(w.pub.alerts), w.store.rebinds, w.store.marked, w.rec.calls)
	}
}

func TestRotate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    certs.Info
		cert    string
		acmErr  error
		wantErr error
		charged bool
	}{
		{name: "exportable public: charged", info: issued(arnA, "AMAZON_ISSUED", "ENABLED"), cert: "shop-web", charged: true},
		{name: "private", info: issued(arnA, "PRIVATE", ""), cert: "shop-web"},
		{name: "imported", info: issued(arnA, "IMPORTED", ""), cert: "shop-web", wantErr: certs.ErrNotRenewable},
		{name: "public not exportable", info: issued(arnA, "AMAZON_ISSUED", "DISABLED"), cert: "shop-web", wantErr: certs.ErrNotRenewable},
		{name: "revoked", info: func() certs.Info { i := issued(arnA, "PRIVATE", ""); i.Status = "REVOKED"; return i }(), cert: "shop-web", wantErr: certs.ErrNotRenewable},
		{name: "unknown name", info: issued(arnA, "PRIVATE", ""), cert: "nope", wantErr: pipeline.ErrUnknownName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.acm.infos[arnA] = tc.info
			res, err := w.svc.Rotate(context.Background(), tc.cert, alice)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				w.nothingHappened(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.acm.renewed, []string{arnA}) || res.Charged != tc.charged || res.SerialBefore != "0a" || res.RequestedBy != alice {
				t.Fatalf("renewed %v, result %+v", w.acm.renewed, res)
			}
			if len(w.store.audits) != 1 || w.store.audits[0].Action != inventory.AuditRotate || w.store.audits[0].By != who || !w.store.audits[0].At.Equal(now) || !res.Recorded.Audit {
				t.Fatalf("audit %+v", w.store.audits)
			}
			if len(w.pub.alerts) != 1 || !strings.Contains(w.pub.alerts[0].Text(), who) || strings.Contains(w.pub.alerts[0].Text(), "charges") != tc.charged {
				t.Fatalf("alerts %+v", w.pub.alerts)
			}
		})
	}
}

// ACM refusing the renewal (one already in progress) changes nothing.
func TestRotateACMRefuses(t *testing.T) {
	w := newWorld()
	w.acm.err = fmt.Errorf("renew: %w", certs.ErrACMBusy)
	if _, err := w.svc.Rotate(context.Background(), "shop-web", alice); !errors.Is(err, certs.ErrACMBusy) {
		t.Fatal(err)
	}
	if len(w.store.audits)+len(w.pub.alerts) != 0 {
		t.Fatal("recorded a renewal ACM refused")
	}
}

func TestRevokeReasons(t *testing.T) {
	for _, tc := range []struct {
		name, typ, export, reason string
		ok                        bool
		wantErr                   error
		listed                    string
	}{
		{name: "public superseded", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "SUPERSEDED", ok: true},
		{name: "lower case and dashes", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "cessation-of-operation", ok: true},
		{name: "public key compromise refused", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "KEY_COMPROMISE", wantErr: certs.ErrBadReason,
			listed: "UNSPECIFIED, AFFILIATION_CHANGED, SUPERSEDED, CESSATION_OF_OPERATION"},
		{name: "public certificate hold refused", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "CERTIFICATE_HOLD", wantErr: certs.ErrBadReason},
		{name: "misspelt superceded refused", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "SUPERCEDED", wantErr: certs.ErrBadReason},
		{name: "no reason", typ: "AMAZON_ISSUED", export: "ENABLED", reason: "", wantErr: certs.ErrBadReason, listed: "UNSPECIFIED"},
		{name: "private key compromise", typ: "PRIVATE", reason: "KEY_COMPROMISE", ok: true},
		{name: "private hold refused", typ: "PRIVATE", reason: "CERTIFICATE_HOLD", wantErr: certs.ErrBadReason, listed: "A_A_COMPROMISE"},
		{name: "private remove from crl refused", typ: "PRIVATE", reason: "REMOVE_FROM_CRL", wantErr: certs.ErrBadReason},
		{name: "imported", typ: "IMPORTED", reason: "UNSPECIFIED", wantErr: certs.ErrNotRevocable},
		{name: "public not exportable", typ: "AMAZON_ISSUED", export: "DISABLED", reason: "UNSPECIFIED", wantErr: certs.ErrNotRevocable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.acm.infos[arnA] = issued(arnA, tc.typ, tc.export)
			res, err := w.svc.Revoke(context.Background(), "shop-web", tc.reason, alice)
			if !tc.ok {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				var de *spec.DomainError
				if tc.wantErr == certs.ErrBadReason && (!errors.As(err, &de) || de.Field != "reason" || !strings.Contains(de.Message, tc.listed)) {
					t.Fatalf("refusal %v does not list the accepted reasons %q", err, tc.listed)
				}
				w.nothingHappened(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(w.acm.revoked) != 1 || !strings.HasSuffix(w.acm.revoked[0], " "+NormalizeReason(tc.reason)) || res.Reason != NormalizeReason(tc.reason) {
				t.Fatalf("revoked %v, result %+v", w.acm.revoked, res)
			}
		})
	}
}

// A revocation marks every name bound to the certificate at risk, halts
// each, records it under each, and alerts once; the ACM event that
// follows finds them marked (MarkAtRisk marks nothing twice).
func TestRevokeMarksEveryBoundName(t *testing.T) {
	w := newWorld()
	res, err := w.svc.Revoke(context.Background(), "shop-web", "SUPERSEDED", alice)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shop-admin", "shop-web"}
	if !slices.Equal(res.AtRisk, want) || !slices.Equal(res.Halted, want) || !slices.Equal(w.rec.calls, []string{"halt shop-admin", "halt shop-web"}) {
		t.Fatalf("result %+v, calls %v", res, w.rec.calls)
	}
	r := w.store.marked["shop-admin"]
	if r.CertificateARN != arnA || r.Serial != "0a" || r.Reason != "SUPERSEDED" || r.By != who || !r.At.Equal(now) {
		t.Fatalf("mark %+v", r)
	}
	if len(w.store.audits) != 2 || len(w.pub.alerts) != 1 || w.pub.alerts[0].Kind != "certificate-revoked" {
		t.Fatalf("audits %+v, %d alerts", w.store.audits, len(w.pub.alerts))
	}
	text := w.pub.alerts[0].Text()
	for _, s := range []string{who, "certferry rebind NAME --arn NEW_ARN", "shop-admin", "shop-web", "SUPERSEDED"} {
		if !strings.Contains(text, s) {
			t.Errorf("alert lacks %q:\n%s", s, text)
		}
	}
	marked, halted, _, err := w.svc.MarkAtRisk(context.Background(), r, "event")
	if err != nil || len(marked)+len(halted) != 0 {
		t.Fatalf("second marking: %v %v %v", marked, halted, err)
	}
}

func TestRevokeAlreadyRevoked(t *testing.T) {
	w := newWorld()
	i := issued(arnA, "AMAZON_ISSUED", "ENABLED")
	i.Status, i.RevocationReason = "REVOKED", "SUPERSEDED"
	w.acm.infos[arnA] = i
	if _, err := w.svc.Revoke(context.Background(), "shop-web", "SUPERSEDED", alice); !errors.Is(err, certs.ErrAlreadyRevoked) {
		t.Fatal(err)
	}
	w.nothingHappened(t)
}

func TestRebind(t *testing.T) {
	expired := issued(arnA, "AMAZON_ISSUED", "ENABLED")
	expired.Status = "EXPIRED"
	revoked := issued(arnA, "AMAZON_ISSUED", "ENABLED")
	revoked.Status, revoked.RevocationReason = "REVOKED", "SUPERSEDED"
	pending := issued(arnB, "AMAZON_ISSUED", "ENABLED")
	pending.Status = "PENDING_VALIDATION"
	for _, tc := range []struct {
		name       string
		arn        string
		old, newer *certs.Info
		mark       bool
		wantErr    error
		field      string
		calls      []string
	}{
		{name: "valid old certificate: through the renewal path", arn: arnB, calls: []string{"renew shop-web"}},
		{name: "marked revoked: at once", arn: arnB, mark: true, calls: []string{"deploy shop-web"}},
		{name: "ACM says revoked: at once", arn: arnB, old: &revoked, calls: []string{"deploy shop-web"}},
		{name: "expired: at once", arn: arnB, old: &expired, calls: []string{"deploy shop-web"}},
		{name: "same certificate", arn: arnA, wantErr: ErrSameCertificate, field: "certificateArn"},
		{name: "not an ARN", arn: "arn:aws:acm:x", field: "certificateArn"},
		{name: "other region", arn: arnW, field: "certificateArn"},
		{name: "unknown certificate", arn: "arn:aws:acm:us-east-1:123456789012:certificate/44444444-2222-3333-4444-555555555555", wantErr: certs.ErrNotFound},
		{name: "not issued", arn: arnB, newer: &pending, wantErr: certs.ErrNotIssued},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			if tc.old != nil {
				w.acm.infos[arnA] = *tc.old
			}
			if tc.newer != nil {
				w.acm.infos[arnB] = *tc.newer
			}
			if tc.mark {
				w.store.certs["shop-web"].Revoked = &inventory.Revocation{CertificateARN: arnA, Reason: "SUPERSEDED"}
			}
			res, err := w.svc.Rebind(context.Background(), "shop-web", tc.arn, alice)
			if tc.wantErr != nil || tc.field != "" {
				var fe *spec.FieldError
				var de *spec.DomainError
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) ||
					tc.field != "" && !(errors.As(err, &fe) && fe.Field == tc.field || errors.As(err, &de) && de.Field == tc.field) {
					t.Fatalf("error %v, want %v field %q", err, tc.wantErr, tc.field)
				}
				w.nothingHappened(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.rec.calls, tc.calls) || !slices.Equal(w.store.rebinds, []string{"shop-web->" + tc.arn}) || res.Previous != arnA {
				t.Fatalf("calls %v rebinds %v result %+v", w.rec.calls, w.store.rebinds, res)
			}
			if len(w.store.audits) != 1 || w.store.audits[0].Action != inventory.AuditRebind || w.store.audits[0].ARN != tc.arn || !strings.Contains(w.store.audits[0].Detail, arnA) {
				t.Fatalf("audit %+v", w.store.audits)
			}
		})
	}
}

// A rebind that lost the optimistic lock (a deployment holds the name)
// deploys nothing; one whose deployment fails stays rebound and says how
// to complete it.
func TestRebindFailures(t *testing.T) {
	w := newWorld()
	w.store.rebindErr = fmt.Errorf("rebind: %w", inventory.ErrConflict)
	if _, err := w.svc.Rebind(context.Background(), "shop-web", arnB, alice); !errors.Is(err, inventory.ErrConflict) {
		t.Fatal(err)
	}
	w.nothingHappened(t)

	w = newWorld()
	w.deployErr = errors.New("SendCommand throttled")
	_, err := w.svc.Rebind(context.Background(), "shop-web", arnB, alice)
	if !errors.Is(err, ErrDeployAfterRebind) || len(w.store.rebinds) != 1 || len(w.store.audits) != 1 {
		t.Fatalf("error %v, rebinds %v", err, w.store.rebinds)
	}
}

func TestApprove(t *testing.T) {
	w := newWorld()
	if _, _, err := w.svc.Approve(context.Background(), "shop-web", alice); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("without an approver: %v", err)
	}
	var got []caller.Caller
	w.svc.cfg.Approver = ApproveFunc(func(_ context.Context, name string, by caller.Caller) (ApprovalResult, error) {
		got = append(got, by)
		if name == "shop-admin" {
			return ApprovalResult{}, fmt.Errorf("approve %s: %w", name, ErrNothingToApprove)
		}
		return ApprovalResult{Name: name, RolloutID: "r-1", What: "wave 1 of 2 sent"}, nil
	})
	if _, _, err := w.svc.Approve(context.Background(), "shop-admin", alice); !errors.Is(err, ErrNothingToApprove) || len(w.store.audits) != 0 {
		t.Fatalf("nothing waiting: %v, audits %v", err, w.store.audits)
	}
	res, rec, err := w.svc.Approve(context.Background(), "shop-web", alice)
	if err != nil || res.RolloutID != "r-1" || !rec.Audit || rec.Alert == "" || got[len(got)-1] != alice {
		t.Fatalf("%+v %+v %v", res, rec, err)
	}
	if e := w.store.audits[0]; e.Action != inventory.AuditApprove || e.By != who || !strings.Contains(e.Detail, "r-1") {
		t.Fatalf("audit %+v", e)
	}
}

func TestLocalCaller(t *testing.T) {
	if got := caller.Or(""); !strings.HasPrefix(got, caller.LocalPrefix) || len(got) <= len(caller.LocalPrefix) {
		t.Fatalf("local identity %q", got)
	}
	if got := caller.Or(who); got != who {
		t.Fatal(got)
	}
}
