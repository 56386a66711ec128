package acmstandin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Revocations is ACM's RevokeCertificate, which the emulator lacks, done
// as AWS documents it:
//
//   - "RevokeCertificate", AWS Certificate Manager API Reference: revokes a
//     public or private certificate "that has been previously exported";
//     "Revoking a certificate is permanent"; the answer is
//     {"CertificateArn"}; errors ResourceInUseException, InvalidArnException,
//     ThrottlingException, ConflictException, AccessDeniedException,
//     ResourceNotFoundException (botocore's acm service-2.json), plus the
//     common ValidationException.
//   - "Revoke an AWS Certificate Manager public certificate", ACM User
//     Guide: exportable public certificates take the reasons Unspecified,
//     Affiliation changed, Superseded, Cessation of operation; "You can
//     only revoke certificates that were previously exported"; "You cannot
//     revoke non-exportable public certificates". The guide names no error
//     code for these refusals: the stand-in answers ValidationException
//     (certferry checks all of them itself before it calls).
//   - Private certificates take the RFC 5280 reasons of AWS Private CA's
//     RevokeCertificate (not CERTIFICATE_HOLD, not REMOVE_FROM_CRL).
//   - Imported certificates were not issued by ACM: refused
//     (ValidationException). A certificate in use by another AWS service
//     (InUseBy not empty): ResourceInUseException ("The certificate is in
//     use by another Amazon Web Services service in the caller's account").
//     One already revoked: ValidationException (the ARN is no longer
//     usable; permanent).
//   - "CertificateDetail", API Reference: once revoked, DescribeCertificate
//     shows Status REVOKED, RevokedAt and RevocationReason ("This value
//     exists only when the certificate status is REVOKED"); a revoked
//     certificate is neither exported nor renewed (ValidationException).
//   - "Amazon EventBridge support for ACM", ACM User Guide: a revocation
//     emits "ACM Certificate Revoked" (source aws.acm, the certificate in
//     resources; detail CertificateType, CommonName,
//     CertificateExpirationDate, Exportable, as events/renewal-revoked.json).
//
// Mount it outside Renewals and Chain (testkit.UseACMRevocations), so that
// what it describes is what ACM would answer (a renewed serial and
// validity) and exports are counted as they leave.
type Revocations struct {
	now      func() time.Time
	mu       sync.Mutex
	exported map[string]bool // ever exported through this layer
	revoked  map[string]revocation
	calls    map[string]int // RevokeCertificate calls that reached ACM, by ARN
	events   chan []byte
}

type revocation struct {
	at     time.Time
	reason string
}

// NewRevocations returns the stand-in with an event buffer of 256 events.
func NewRevocations() *Revocations {
	return &Revocations{now: time.Now, exported: map[string]bool{}, revoked: map[string]revocation{}, calls: map[string]int{}, events: make(chan []byte, 256)}
}

// SetClock sets the stand-in's clock (RevokedAt, the event's time).
func (r *Revocations) SetClock(now func() time.Time) { r.now = now }

// Events are the "ACM Certificate Revoked" events emitted, as EventBridge
// would deliver them.
func (r *Revocations) Events() <-chan []byte { return r.events }

// Calls is how many RevokeCertificate requests for arn reached the stand-in.
func (r *Revocations) Calls(arn string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[arn]
}

var (
	publicReasons  = []string{"UNSPECIFIED", "AFFILIATION_CHANGED", "SUPERSEDED", "CESSATION_OF_OPERATION"}
	privateReasons = []string{"UNSPECIFIED", "KEY_COMPROMISE", "CA_COMPROMISE", "AFFILIATION_CHANGED", "SUPERSEDED",
		"CESSATION_OF_OPERATION", "PRIVILEGE_WITHDRAWN", "A_A_COMPROMISE"}
)

// Layer is the stand-in as a proxy layer.
func (r *Revocations) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			CertificateArn   string
			RevocationReason string
		}
		op, ok := intercept(w, req, next, &in, "RevokeCertificate", "DescribeCertificate", "ExportCertificate", "RenewCertificate", "DeleteCertificate")
		if !ok {
			return
		}
		r.mu.Lock()
		rv, isRevoked := r.revoked[in.CertificateArn]
		r.mu.Unlock()
		switch op {
		case "RevokeCertificate":
			r.revoke(w, req, next, in.CertificateArn, in.RevocationReason)
			return
		case "ExportCertificate", "RenewCertificate":
			if isRevoked {
				writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has been revoked and cannot be used.", in.CertificateArn))
				return
			}
		}
		rec, body, ok := callJSON(next, w, req, "revocation", op)
		if !ok {
			return
		}
		switch op {
		case "ExportCertificate":
			r.mu.Lock()
			r.exported[in.CertificateArn] = true
			r.mu.Unlock()
		case "DeleteCertificate":
			r.mu.Lock()
			delete(r.exported, in.CertificateArn)
			delete(r.revoked, in.CertificateArn)
			r.mu.Unlock()
		case "DescribeCertificate":
			if d, ok := body["Certificate"].(map[string]any); ok && isRevoked {
				d["Status"] = "REVOKED"
				d["RevokedAt"] = epoch(rv.at)
				d["RevocationReason"] = rv.reason
				d["RenewalEligibility"] = "INELIGIBLE"
			}
		}
		out, _ := json.Marshal(body)
		writeJSON(w, http.StatusOK, rec.Header(), out)
	})
}

// revoke answers RevokeCertificate.
func (r *Revocations) revoke(w http.ResponseWriter, req *http.Request, next http.Handler, arn, reason string) {
	r.mu.Lock()
	r.calls[arn]++
	r.mu.Unlock()
	d, ok := describeCert(w, req, next, arn, "revocation")
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, already := r.revoked[arn]
	var reasons []string
	switch {
	case d["Type"] == "PRIVATE":
		reasons = privateReasons
	case exportable(d):
		reasons = publicReasons
	}
	switch {
	case already:
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has already been revoked.", arn))
	case d["Type"] == "IMPORTED":
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s is imported; ACM revokes only certificates it issued.", arn))
	case reasons == nil:
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s is not exportable; non-exportable public certificates cannot be revoked.", arn))
	case d["Status"] != "ISSUED":
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has status %v and cannot be revoked.", arn, d["Status"]))
	case !r.exported[arn]:
		writeError(w, "ValidationException", fmt.Sprintf("Certificate %s has not been exported; only previously exported certificates can be revoked.", arn))
	case len(asSlice(d["InUseBy"])) > 0:
		writeError(w, "ResourceInUseException", fmt.Sprintf("Certificate %s is in use by another AWS service.", arn))
	case !slices.Contains(reasons, reason):
		writeError(w, "ValidationException", fmt.Sprintf("Revocation reason %s is not supported for this certificate; supported: %s.", reason, strings.Join(reasons, ", ")))
	default:
		at := r.now().UTC().Truncate(time.Second)
		r.revoked[arn] = revocation{at: at, reason: reason}
		if ev, err := revokedEvent(arn, d, at); err == nil {
			offer(r.events, ev)
		}
		b, _ := json.Marshal(map[string]string{"CertificateArn": arn})
		writeJSON(w, http.StatusOK, nil, b)
	}
}

// revokedEvent is the EventBridge event ACM sends after a revocation
// ("Amazon EventBridge support for ACM", ACM User Guide: detail-type "ACM
// Certificate Revoked", source aws.acm, the certificate in resources).
func revokedEvent(arn string, d map[string]any, at time.Time) ([]byte, error) {
	detail := map[string]any{
		"CertificateType": d["Type"],
		"CommonName":      d["DomainName"],
		"Exportable":      "TRUE",
	}
	if na, ok := d["NotAfter"].(float64); ok {
		detail["CertificateExpirationDate"] = time.Unix(int64(na), 0).UTC().Format(time.RFC3339)
	}
	return acmEvent(arn, "ACM Certificate Revoked", at, detail)
}
