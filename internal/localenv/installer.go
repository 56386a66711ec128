package localenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/publish"
)

// InstallerBucket is the local stand-in for the stack's installer bucket.
const InstallerBucket = "certferry-installer"

// NewS3 is an S3 client for the emulator or AWS: path-style addressing,
// which moto needs and which SSM Agent's path-style URLs use too.
func NewS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true // moto sends no checksums; the document checks SHA-256 itself
	})
}

// StackPlatforms are the builds the stack publishes.
var StackPlatforms = publish.Platforms

// HostPlatform is the Linux build for this machine's architecture, the one
// a local node runs.
func HostPlatform() publish.Platform { return publish.Platform{GOOS: "linux", GOARCH: runtime.GOARCH} }

// PublishInstaller builds cmd/certferry-node for each of platforms into
// workDir and stores the builds in the local installer bucket under
// installer/<sha256>/. With every stack platform it is the stack's own
// publisher (internal/publish, the InstallerPublication custom resource's
// code) that stores them; with fewer (the demo's one node) each build is
// stored alone under the same layout. It returns the settings the pipeline
// passes to commands (an unbuilt platform's hash stays empty).
func PublishInstaller(ctx context.Context, cfg aws.Config, workDir string, platforms ...publish.Platform) (config.Installer, error) {
	api := NewS3(cfg)
	if err := ensureBucket(ctx, api, InstallerBucket, cfg.Region); err != nil {
		return config.Installer{}, err
	}
	in := config.Installer{Bucket: InstallerBucket, KeyPrefix: config.DefaultInstallerKeyPrefix}
	hashes := map[publish.Platform]string{}
	for _, p := range platforms {
		out := filepath.Join(workDir, p.PackageFile())
		if err := agentrun.BuildInstaller(ctx, p.GOOS, p.GOARCH, out); err != nil {
			return in, err
		}
	}
	if len(platforms) == len(publish.Platforms) {
		pub, err := publish.NewPublisher(api).Publish(ctx, in.Bucket, in.KeyPrefix, workDir)
		if err != nil {
			return in, err
		}
		for _, p := range publish.Platforms {
			hashes[p] = pub.SHA256(p)
		}
	} else {
		for _, p := range platforms {
			content, err := os.ReadFile(filepath.Join(workDir, p.PackageFile()))
			if err != nil {
				return in, fmt.Errorf("read installer build: %w", err)
			}
			if hashes[p], err = agentrun.PublishInstaller(ctx, api, in.Bucket, in.KeyPrefix, p.GOOS, content); err != nil {
				return in, err
			}
		}
	}
	in.SHA256LinuxAmd64 = hashes[publish.Platform{GOOS: "linux", GOARCH: "amd64"}]
	in.SHA256LinuxArm64 = hashes[publish.Platform{GOOS: "linux", GOARCH: "arm64"}]
	in.SHA256WindowsAmd64 = hashes[publish.Platform{GOOS: "windows", GOARCH: "amd64"}]
	return in, nil
}

// InstallerParams are the document's Installer* parameters for in.
func InstallerParams(in config.Installer) map[string]string {
	return map[string]string{
		"InstallerBucket": in.Bucket, "InstallerKeyPrefix": in.KeyPrefix,
		"InstallerSha256LinuxAmd64": in.SHA256LinuxAmd64, "InstallerSha256LinuxArm64": in.SHA256LinuxArm64,
		"InstallerSha256WindowsAmd64": in.SHA256WindowsAmd64,
	}
}

// InstallerExports are the `export` lines of the installer settings.
func InstallerExports(in config.Installer) []string {
	return []string{
		"export " + config.EnvInstallerBucket + "=" + in.Bucket,
		"export " + config.EnvInstallerKeyPrefix + "=" + in.KeyPrefix,
		"export " + config.EnvInstallerSHA256LinuxAmd64 + "=" + in.SHA256LinuxAmd64,
		"export " + config.EnvInstallerSHA256LinuxArm64 + "=" + in.SHA256LinuxArm64,
		"export " + config.EnvInstallerSHA256WindowsAmd64 + "=" + in.SHA256WindowsAmd64,
	}
}

func ensureBucket(ctx context.Context, api *s3.Client, name, region string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	_, err := api.CreateBucket(ctx, in)
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}
