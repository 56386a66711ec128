package certs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/backoff"
)

// Domain errors, mapped to HTTP status codes at the API edge.
var (
	ErrNotFound      = errors.New("certificate not found")
	ErrNotExportable = errors.New("certificate is not exportable")
	ErrNotIssued     = errors.New("certificate is not issued")
)

// acmAPI is the part of the ACM client certferry calls.
type acmAPI interface {
	DescribeCertificate(ctx context.Context, in *acm.DescribeCertificateInput, optFns ...func(*acm.Options)) (*acm.DescribeCertificateOutput, error)
	ExportCertificate(ctx context.Context, in *acm.ExportCertificateInput, optFns ...func(*acm.Options)) (*acm.ExportCertificateOutput, error)
}

var _ acmAPI = (*acm.Client)(nil)

// ARNPattern is the shape of an ACM certificate ARN in any partition.
var ARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:acm:[a-z]{2}(-[a-z]+)+-\d:\d{12}:certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ARNRegion returns the region field of a certificate ARN.
func ARNRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// ARNAccount returns the account field of a certificate ARN.
func ARNAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// Info is what certferry needs from DescribeCertificate.
type Info struct {
	ARN                string
	DomainName         string
	Status             string
	Type               string // AMAZON_ISSUED, PRIVATE, IMPORTED
	ExportOption       string // ENABLED, DISABLED, "" when ACM does not say
	Serial             string // normalized, see NormalizeSerial
	NotBefore          time.Time
	NotAfter           time.Time
	KeyAlgorithm       string
	RenewalEligibility string
	RenewalStatus      string
	RenewalReason      string // RenewalSummary.RenewalStatusReason when a renewal failed
	ValidationMethods  []string
	InUseBy            []string
	// RevokedAt and RevocationReason are set when Status is REVOKED
	// ("CertificateDetail", ACM API Reference).
	RevokedAt        time.Time
	RevocationReason string
}

// Exportable reports whether ACM lets this certificate be exported.
func (i Info) Exportable() bool {
	return i.Type == string(acmtypes.CertificateTypePrivate) ||
		(i.Type == string(acmtypes.CertificateTypeAmazonIssued) && i.ExportOption == string(acmtypes.CertificateExportEnabled))
}

// CheckDeployable returns nil when the certificate can be exported now, or a
// wrapped ErrNotIssued / ErrNotExportable naming the reason.
func (i Info) CheckDeployable() error {
	if i.Status != string(acmtypes.CertificateStatusIssued) {
		return fmt.Errorf("%w: %s has status %s", ErrNotIssued, i.ARN, i.Status)
	}
	if !i.Exportable() {
		switch i.Type {
		case string(acmtypes.CertificateTypeImported):
			return fmt.Errorf("%w: %s is an imported certificate; ACM exports only private-CA certificates and public certificates requested with Export ENABLED", ErrNotExportable, i.ARN)
		default:
			return fmt.Errorf("%w: %s is %s without Options.Export=ENABLED; request a new certificate with export enabled", ErrNotExportable, i.ARN, i.Type)
		}
	}
	return nil
}

// Exported is the raw ExportCertificate answer. PrivateKey is encrypted.
type Exported struct {
	Certificate      string
	CertificateChain string
	PrivateKey       string
}

// Client wraps ACM with certferry's error mapping and export retries.
type Client struct {
	api acmAPI
	// ExportAttempts and ExportBackoff govern the retries around
	// ExportCertificate, which can fail transiently just after a renewal.
	ExportAttempts int
	ExportBackoff  time.Duration
	sleep          func(context.Context, time.Duration) error
}

// NewClient returns a Client with 5 export attempts and 2 s initial backoff.
func NewClient(api acmAPI) *Client {
	return &Client{api: api, ExportAttempts: 5, ExportBackoff: 2 * time.Second, sleep: backoff.Sleep}
}

// Describe reads a certificate's state from ACM.
func (c *Client) Describe(ctx context.Context, arn string) (Info, error) {
	out, err := c.api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		var nf *acmtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return Info{}, fmt.Errorf("describe certificate %s: %w", arn, ErrNotFound)
		}
		return Info{}, fmt.Errorf("describe certificate %s: %w", arn, err)
	}
	d := out.Certificate
	if d == nil {
		return Info{}, fmt.Errorf("describe certificate %s: empty answer", arn)
	}
	info := Info{
		ARN:                arn,
		DomainName:         aws.ToString(d.DomainName),
		Status:             string(d.Status),
		Type:               string(d.Type),
		KeyAlgorithm:       string(d.KeyAlgorithm),
		RenewalEligibility: string(d.RenewalEligibility),
		InUseBy:            d.InUseBy,
	}
	if d.Options != nil {
		info.ExportOption = string(d.Options.Export)
	}
	if d.NotBefore != nil {
		info.NotBefore = d.NotBefore.UTC()
	}
	if d.NotAfter != nil {
		info.NotAfter = d.NotAfter.UTC()
	}
	if d.RevokedAt != nil {
		info.RevokedAt = d.RevokedAt.UTC()
	}
	info.RevocationReason = string(d.RevocationReason)
	if d.RenewalSummary != nil {
		info.RenewalStatus = string(d.RenewalSummary.RenewalStatus)
		info.RenewalReason = string(d.RenewalSummary.RenewalStatusReason)
	}
	for _, v := range d.DomainValidationOptions {
		if m := string(v.ValidationMethod); m != "" && !slices.Contains(info.ValidationMethods, m) {
			info.ValidationMethods = append(info.ValidationMethods, m)
		}
	}
	if s := aws.ToString(d.Serial); s != "" {
		if info.Serial, err = NormalizeSerial(s); err != nil {
			return Info{}, fmt.Errorf("describe certificate %s: %w", arn, err)
		}
	}
	return info, nil
}

// Export calls ExportCertificate, retrying with exponential backoff on
// answers that are transient right after an issuance or renewal.
func (c *Client) Export(ctx context.Context, arn string, passphrase []byte) (Exported, error) {
	backoff := c.ExportBackoff
	var lastErr error
	for attempt := 1; attempt <= max(1, c.ExportAttempts); attempt++ {
		out, err := c.api.ExportCertificate(ctx, &acm.ExportCertificateInput{
			CertificateArn: aws.String(arn),
			Passphrase:     passphrase,
		})
		if err == nil {
			return Exported{
				Certificate:      aws.ToString(out.Certificate),
				CertificateChain: aws.ToString(out.CertificateChain),
				PrivateKey:       aws.ToString(out.PrivateKey),
			}, nil
		}
		lastErr = err
		if !transientExportError(err) || attempt == c.ExportAttempts {
			break
		}
		if err := c.sleep(ctx, backoff); err != nil {
			return Exported{}, fmt.Errorf("export certificate %s: %w", arn, err)
		}
		backoff *= 2
	}
	var nf *acmtypes.ResourceNotFoundException
	if errors.As(lastErr, &nf) {
		return Exported{}, fmt.Errorf("export certificate %s: %w", arn, ErrNotFound)
	}
	return Exported{}, fmt.Errorf("export certificate %s: %w", arn, lastErr)
}

// transientExportError reports the errors worth another ExportCertificate
// attempt: a request still in progress, throttling, and server faults.
func transientExportError(err error) bool {
	var inProgress *acmtypes.RequestInProgressException
	if errors.As(err, &inProgress) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "ThrottlingException", "RequestInProgressException", "ServiceUnavailable", "InternalFailure":
			return true
		}
		return apiErr.ErrorFault() == smithy.FaultServer
	}
	return false
}

// DaysLeft is the number of whole days from now until notAfter (negative
// once expired).
func DaysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}
