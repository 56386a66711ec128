package certs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"
)

// Errors of the lifecycle actions, mapped to HTTP status codes at the API edge.
var (
	// ErrNotRenewable: ACM's RenewCertificate does not take this certificate.
	ErrNotRenewable = errors.New("certificate cannot be renewed with RenewCertificate")
	// ErrNotRevocable: ACM's RevokeCertificate does not take this certificate.
	ErrNotRevocable = errors.New("certificate cannot be revoked with RevokeCertificate")
	// ErrAlreadyRevoked: the certificate is revoked already (permanent).
	ErrAlreadyRevoked = errors.New("certificate is already revoked")
	// ErrBadReason: a revocation reason ACM does not accept for this certificate.
	ErrBadReason = errors.New("revocation reason not accepted for this certificate")
	// ErrACMBusy: ACM answered that the certificate is being changed
	// (RequestInProgressException, ConflictException) or is in use by another
	// AWS service (ResourceInUseException).
	ErrACMBusy = errors.New("ACM refused the change for now")
)

// actionsAPI is the part of ACM the lifecycle actions call.
type actionsAPI interface {
	RenewCertificate(ctx context.Context, in *acm.RenewCertificateInput, optFns ...func(*acm.Options)) (*acm.RenewCertificateOutput, error)
	RevokeCertificate(ctx context.Context, in *acm.RevokeCertificateInput, optFns ...func(*acm.Options)) (*acm.RevokeCertificateOutput, error)
}

var _ actionsAPI = (*acm.Client)(nil)

// Actions are the operator's lifecycle calls on ACM: renew now and revoke.
// Neither is retried by certferry: RenewCertificate starts a (charged, for
// public certificates) renewal each time ACM accepts it, and revocation is
// permanent; the SDK's own retries cover throttling and 5xx only.
type Actions struct{ api actionsAPI }

// NewActions returns Actions on an ACM client.
func NewActions(api actionsAPI) *Actions { return &Actions{api: api} }

// CheckRenewable returns nil when RenewCertificate takes the certificate:
// ISSUED, and PRIVATE or AMAZON_ISSUED with Options.Export ENABLED ("Force
// certificate renewal", ACM User Guide: public and private certificates
// can be renewed, only ones exported before; imported certificates are
// never renewed by ACM). Whether it was exported since it was issued or
// last renewed ACM alone knows (RenewalEligibility); ACM's refusal of a
// certificate not exported since answers ValidationException, which Renew
// maps to ErrNotRenewable too.
func (i Info) CheckRenewable() error {
	switch {
	case i.Type == string(acmtypes.CertificateTypeImported):
		return fmt.Errorf("%w: %s is an imported certificate; ACM renews only certificates it issued (reimport a renewed certificate instead)", ErrNotRenewable, i.ARN)
	case !i.Exportable():
		return fmt.Errorf("%w: %s is a public certificate requested without Options.Export=ENABLED; ACM renews it on its own (managed renewal), RenewCertificate takes only exportable public and private certificates", ErrNotRenewable, i.ARN)
	case i.Status != string(acmtypes.CertificateStatusIssued):
		return fmt.Errorf("%w: %s has status %s; only an ISSUED certificate can be renewed", ErrNotRenewable, i.ARN, i.Status)
	}
	return nil
}

// Charged reports whether ACM charges for a renewal of the certificate:
// exportable public certificates are charged on issuance and each renewal
// ("AWS Certificate Manager pricing"); private ones are billed through
// AWS Private CA.
func (i Info) Charged() bool {
	return i.Type == string(acmtypes.CertificateTypeAmazonIssued)
}

// Revocation reasons, spelled as ACM's RevocationReason enum.
const (
	ReasonUnspecified          = "UNSPECIFIED"
	ReasonKeyCompromise        = "KEY_COMPROMISE"
	ReasonCACompromise         = "CA_COMPROMISE"
	ReasonAffiliationChanged   = "AFFILIATION_CHANGED"
	ReasonSuperseded           = "SUPERSEDED"
	ReasonCessationOfOperation = "CESSATION_OF_OPERATION"
	ReasonPrivilegeWithdrawn   = "PRIVILEGE_WITHDRAWN"
	ReasonAACompromise         = "A_A_COMPROMISE"
)

// RevocationReasons are the reasons ACM accepts when revoking the
// certificate, or nil when it cannot be revoked through ACM at all.
//
//   - Exportable public certificates: "Revoke an AWS Certificate Manager
//     public certificate", ACM User Guide: "A reason is required … The
//     following reasons can be used: Unspecified, Affiliation changed,
//     Superseded, Cessation of operation" (the Amazon Trust Services
//     subscriber agreement); non-exportable public certificates cannot be
//     revoked ("delete them instead").
//   - Private certificates (issued through ACM from AWS Private CA; the
//     RevokeCertificate API reference takes "the public or private
//     certificate"): the RFC 5280 reasons AWS Private CA's RevokeCertificate
//     accepts ("RevokeCertificate", AWS Private CA API Reference), in ACM's
//     spelling. ACM's enum also lists CERTIFICATE_HOLD and REMOVE_FROM_CRL,
//     which Private CA does not take (a hold is not revocation), and the
//     misspelt SUPERCEDED, which certferry never sends.
//   - Imported certificates: ACM did not issue them; revoke with the CA
//     that did.
func (i Info) RevocationReasons() []string {
	switch {
	case i.Type == string(acmtypes.CertificateTypePrivate):
		return []string{ReasonUnspecified, ReasonKeyCompromise, ReasonCACompromise, ReasonAffiliationChanged,
			ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn, ReasonAACompromise}
	case i.Type == string(acmtypes.CertificateTypeAmazonIssued) && i.Exportable():
		return []string{ReasonUnspecified, ReasonAffiliationChanged, ReasonSuperseded, ReasonCessationOfOperation}
	}
	return nil
}

// CheckRevocable returns nil when ACM's RevokeCertificate takes the
// certificate with reason: an ACM-issued exportable certificate (ACM User
// Guide: "You can only revoke certificates that were previously
// exported"; certferry exported it when it deployed it), not revoked yet,
// and a reason accepted for its type.
func (i Info) CheckRevocable(reason string) error {
	reasons := i.RevocationReasons()
	switch {
	case i.Type == string(acmtypes.CertificateTypeImported):
		return fmt.Errorf("%w: %s is an imported certificate; ACM did not issue it, so revoke it with the CA that did", ErrNotRevocable, i.ARN)
	case reasons == nil:
		return fmt.Errorf("%w: %s is a public certificate requested without Options.Export=ENABLED; ACM revokes only exportable certificates (delete it in ACM if it is no longer needed)", ErrNotRevocable, i.ARN)
	case i.Status == string(acmtypes.CertificateStatusRevoked):
		return fmt.Errorf("%w: %s was revoked (%s); revocation is permanent", ErrAlreadyRevoked, i.ARN, i.RevocationReason)
	case i.Status != string(acmtypes.CertificateStatusIssued):
		return fmt.Errorf("%w: %s has status %s; only an ISSUED certificate can be revoked", ErrNotRevocable, i.ARN, i.Status)
	case !slices.Contains(reasons, reason):
		kind := "a private certificate"
		if i.Type == string(acmtypes.CertificateTypeAmazonIssued) {
			kind = "an exportable public certificate"
		}
		return fmt.Errorf("%w: %q is not a reason ACM accepts for %s; use one of %s", ErrBadReason, reason, kind, strings.Join(reasons, ", "))
	}
	return nil
}

// Renew calls RenewCertificate once.
func (a *Actions) Renew(ctx context.Context, arn string) error {
	_, err := a.api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		return actionError("renew certificate", arn, err, ErrNotRenewable)
	}
	return nil
}

// Revoke calls RevokeCertificate once with reason.
func (a *Actions) Revoke(ctx context.Context, arn, reason string) error {
	_, err := a.api.RevokeCertificate(ctx, &acm.RevokeCertificateInput{
		CertificateArn: aws.String(arn), RevocationReason: acmtypes.RevocationReason(reason),
	})
	if err != nil {
		return actionError("revoke certificate", arn, err, ErrNotRevocable)
	}
	return nil
}

// actionError maps ACM's refusals to the domain errors; anything else is
// a dependency failure, wrapped.
func actionError(action, arn string, err error, refused error) error {
	var nf *acmtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("%s %s: %w", action, arn, ErrNotFound)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ValidationException", "InvalidArnException":
			return fmt.Errorf("%s %s: %w: ACM says: %s", action, arn, refused, apiErr.ErrorMessage())
		case "RequestInProgressException", "ConflictException", "ResourceInUseException":
			return fmt.Errorf("%s %s: %w: %s: %s", action, arn, ErrACMBusy, apiErr.ErrorCode(), apiErr.ErrorMessage())
		}
	}
	return fmt.Errorf("%s %s: %w", action, arn, err)
}
