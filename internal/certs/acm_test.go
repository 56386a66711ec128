package certs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
)

// fakeACM is a hand-written fake with function fields.
type fakeACM struct {
	describe func(*acm.DescribeCertificateInput) (*acm.DescribeCertificateOutput, error)
	export   func(*acm.ExportCertificateInput) (*acm.ExportCertificateOutput, error)
	exports  int
}

func (f *fakeACM) DescribeCertificate(_ context.Context, in *acm.DescribeCertificateInput, _ ...func(*acm.Options)) (*acm.DescribeCertificateOutput, error) {
	return f.describe(in)
}

func (f *fakeACM) ExportCertificate(_ context.Context, in *acm.ExportCertificateInput, _ ...func(*acm.Options)) (*acm.ExportCertificateOutput, error) {
	f.exports++
	return f.export(in)
}

const testARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"

func TestDescribe(t *testing.T) {
	notAfter := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		detail     *acmtypes.CertificateDetail
		err        error
		wantErr    error
		deployErr  error
		wantSerial string
	}{
		{
			name: "private issued",
			detail: &acmtypes.CertificateDetail{Status: acmtypes.CertificateStatusIssued, Type: acmtypes.CertificateTypePrivate,
				Serial: aws.String("0a:ff"), NotAfter: &notAfter, DomainName: aws.String("a.example")},
			wantSerial: "aff",
		},
		{
			name: "public export enabled",
			detail: &acmtypes.CertificateDetail{Status: acmtypes.CertificateStatusIssued, Type: acmtypes.CertificateTypeAmazonIssued,
				Options: &acmtypes.CertificateOptions{Export: acmtypes.CertificateExportEnabled}, Serial: aws.String("01")},
			wantSerial: "1",
		},
		{
			name: "public export disabled",
			detail: &acmtypes.CertificateDetail{Status: acmtypes.CertificateStatusIssued, Type: acmtypes.CertificateTypeAmazonIssued,
				Options: &acmtypes.CertificateOptions{Export: acmtypes.CertificateExportDisabled}},
			deployErr: ErrNotExportable,
		},
		{
			name:      "imported",
			detail:    &acmtypes.CertificateDetail{Status: acmtypes.CertificateStatusIssued, Type: acmtypes.CertificateTypeImported},
			deployErr: ErrNotExportable,
		},
		{
			name:      "pending validation",
			detail:    &acmtypes.CertificateDetail{Status: acmtypes.CertificateStatusPendingValidation, Type: acmtypes.CertificateTypePrivate},
			deployErr: ErrNotIssued,
		},
		{name: "not found", err: &acmtypes.ResourceNotFoundException{Message: aws.String("nope")}, wantErr: ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(&fakeACM{describe: func(*acm.DescribeCertificateInput) (*acm.DescribeCertificateOutput, error) {
				return &acm.DescribeCertificateOutput{Certificate: tc.detail}, tc.err
			}})
			info, err := c.Describe(context.Background(), testARN)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Describe() error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := info.CheckDeployable(); !errors.Is(err, tc.deployErr) {
				t.Fatalf("CheckDeployable() = %v, want %v", err, tc.deployErr)
			}
			if info.Serial != tc.wantSerial {
				t.Errorf("serial = %q, want %q", info.Serial, tc.wantSerial)
			}
		})
	}
}

func TestExportRetries(t *testing.T) {
	tests := []struct {
		name        string
		failures    []error
		wantErr     string
		wantExports int
	}{
		{name: "first try", wantExports: 1},
		{name: "in progress then ok", failures: []error{&acmtypes.RequestInProgressException{Message: aws.String("wait")}}, wantExports: 2},
		{name: "throttled twice then ok", failures: []error{
			&acmtypes.ThrottlingException{Message: aws.String("slow")}, &acmtypes.ThrottlingException{Message: aws.String("slow")},
		}, wantExports: 3},
		{name: "validation error is final", failures: []error{&acmtypes.ValidationException{Message: aws.String("no")}},
			wantErr: "ValidationException", wantExports: 1},
		{name: "gives up after attempts", failures: []error{
			&acmtypes.RequestInProgressException{}, &acmtypes.RequestInProgressException{}, &acmtypes.RequestInProgressException{},
		}, wantErr: "RequestInProgress", wantExports: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			fake := &fakeACM{export: func(in *acm.ExportCertificateInput) (*acm.ExportCertificateOutput, error) {
				calls++
				if string(in.Passphrase) != "pw" {
					t.Errorf("passphrase not passed through")
				}
				if calls <= len(tc.failures) {
					return nil, tc.failures[calls-1]
				}
				return &acm.ExportCertificateOutput{Certificate: aws.String("C"), PrivateKey: aws.String("K")}, nil
			}}
			c := NewClient(fake)
			c.ExportAttempts = 3
			var slept []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
			got, err := c.Export(context.Background(), testARN, []byte("pw"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Export() error = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil || got.Certificate != "C" {
				t.Fatalf("Export() = %+v, %v", got, err)
			}
			if fake.exports != tc.wantExports {
				t.Errorf("ExportCertificate called %d times, want %d", fake.exports, tc.wantExports)
			}
			for i := 1; i < len(slept); i++ {
				if slept[i] != 2*slept[i-1] {
					t.Errorf("backoff not exponential: %v", slept)
				}
			}
		})
	}
}

func TestARNPattern(t *testing.T) {
	good := []string{testARN, "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"}
	bad := []string{
		"", "arn:aws:iam::123456789012:role/x", "arn:aws:acm:us-east-1:123456789012:certificate/../../x",
		testARN + "\n", "arn:aws:acm:us-east-1:123:certificate/11111111-2222-3333-4444-555555555555",
		"arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555",
	}
	for _, a := range good {
		if !ARNPattern.MatchString(a) {
			t.Errorf("%q rejected", a)
		}
	}
	for _, a := range bad {
		if ARNPattern.MatchString(a) {
			t.Errorf("%q accepted", a)
		}
	}
	if r := ARNRegion(testARN); r != "us-east-1" {
		t.Errorf("ARNRegion = %q", r)
	}
}
