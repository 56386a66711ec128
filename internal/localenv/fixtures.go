package localenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The helpers below create demo and test fixtures in an emulator (or a
// sandbox account): certificates to onboard and instances to target.

// RequestExportable requests a public certificate with Options.Export
// ENABLED and waits until ACM reports it ISSUED.
func RequestExportable(ctx context.Context, cfg aws.Config, domain string) (string, error) {
	api := acm.NewFromConfig(cfg)
	out, err := api.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName:       aws.String(domain),
		ValidationMethod: acmtypes.ValidationMethodDns,
		Options:          &acmtypes.CertificateOptions{Export: acmtypes.CertificateExportEnabled},
	})
	if err != nil {
		return "", fmt.Errorf("request certificate %s: %w", domain, err)
	}
	return aws.ToString(out.CertificateArn), waitIssued(ctx, api, aws.ToString(out.CertificateArn))
}

// RequestNotExportable requests a public certificate without export.
func RequestNotExportable(ctx context.Context, cfg aws.Config, domain string) (string, error) {
	api := acm.NewFromConfig(cfg)
	out, err := api.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName: aws.String(domain), ValidationMethod: acmtypes.ValidationMethodDns,
	})
	if err != nil {
		return "", fmt.Errorf("request certificate %s: %w", domain, err)
	}
	return aws.ToString(out.CertificateArn), waitIssued(ctx, api, aws.ToString(out.CertificateArn))
}

// CreatePrivateCA creates a root CA in AWS Private CA.
func CreatePrivateCA(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := acmpca.NewFromConfig(cfg).CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType: pcatypes.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: &pcatypes.CertificateAuthorityConfiguration{
			KeyAlgorithm:     pcatypes.KeyAlgorithmRsa2048,
			SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
			Subject:          &pcatypes.ASN1Subject{CommonName: aws.String("certferry demo root CA"), Organization: aws.String("certferry")},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create private CA: %w", err)
	}
	return aws.ToString(out.CertificateAuthorityArn), nil
}

// RequestPrivate requests a certificate from a private CA through ACM.
func RequestPrivate(ctx context.Context, cfg aws.Config, caARN, domain string) (string, error) {
	api := acm.NewFromConfig(cfg)
	out, err := api.RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName: aws.String(domain), CertificateAuthorityArn: aws.String(caARN),
	})
	if err != nil {
		return "", fmt.Errorf("request private certificate %s: %w", domain, err)
	}
	return aws.ToString(out.CertificateArn), waitIssued(ctx, api, aws.ToString(out.CertificateArn))
}

func waitIssued(ctx context.Context, api *acm.Client, arn string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("describe %s: %w", arn, err)
		}
		if out.Certificate.Status == acmtypes.CertificateStatusIssued {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still %s after 2 minutes", arn, out.Certificate.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// LaunchInstances starts n instances carrying tags (none when tags is nil).
func LaunchInstances(ctx context.Context, cfg aws.Config, n int, tags map[string]string) ([]string, error) {
	api := ec2.NewFromConfig(cfg)
	imgs, err := api.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		return nil, fmt.Errorf("find an AMI: %v", err)
	}
	in := &ec2.RunInstancesInput{
		ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT4gMicro,
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
	}
	if len(tags) > 0 {
		spec := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeInstance}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []ec2types.TagSpecification{spec}
	}
	out, err := api.RunInstances(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("run instances: %w", err)
	}
	var ids []string
	for _, i := range out.Instances {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	return ids, nil
}

// Seeded is what Seed created.
type Seeded struct {
	PublicARN, PrivateCAARN, PrivateARN string
	Instances                           []string
}

// Seed creates something to onboard in an emulator: an exportable public
// certificate for shop.example.com, a private CA with a certificate for
// api.internal.example, and two instances tagged env=prod.
func Seed(ctx context.Context, cfg aws.Config) (Seeded, error) {
	var s Seeded
	var err error
	if s.PublicARN, err = RequestExportable(ctx, cfg, "shop.example.com"); err != nil {
		return s, err
	}
	if s.PrivateCAARN, err = CreatePrivateCA(ctx, cfg); err != nil {
		return s, err
	}
	if s.PrivateARN, err = RequestPrivate(ctx, cfg, s.PrivateCAARN, "api.internal.example"); err != nil {
		return s, err
	}
	if s.Instances, err = LaunchInstances(ctx, cfg, 2, map[string]string{"env": "prod"}); err != nil {
		return s, err
	}
	return s, nil
}

// Exports are the seed's `export` lines.
func (s Seeded) Exports() []string {
	return []string{
		"export CERT_ARN=" + s.PublicARN + "   # shop.example.com, public, export enabled",
		"export PRIVATE_CERT_ARN=" + s.PrivateARN + "   # api.internal.example, from the private CA",
		"export PRIVATE_CA_ARN=" + s.PrivateCAARN,
		"export INSTANCE_IDS=\"" + strings.Join(s.Instances, " ") + "\"   # tagged env=prod",
	}
}
