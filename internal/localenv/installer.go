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

// Platform is one installer build.
type Platform struct{ GOOS, GOARCH string }

// StackPlatforms are the builds the stack publishes.
var StackPlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"windows", "amd64"}}

// HostPlatform is the Linux build for this machine's architecture, the one
// a local node runs.
func HostPlatform() Platform { return Platform{"linux", runtime.GOARCH} }

// PublishInstaller builds cmd/certferry-node for each of platforms into
// workDir, stores each build in the installer bucket under
// installer/<sha256>/, as the stack's publisher does, and returns the
// settings the pipeline passes to commands (an unbuilt platform's hash
// stays empty).
func PublishInstaller(ctx context.Context, cfg aws.Config, workDir string, platforms ...Platform) (config.Installer, error) {
	api := NewS3(cfg)
	if err := ensureBucket(ctx, api, InstallerBucket, cfg.Region); err != nil {
		return config.Installer{}, err
	}
	in := config.Installer{Bucket: InstallerBucket, KeyPrefix: config.DefaultInstallerKeyPrefix}
	for _, p := range platforms {
		t := struct{ goos, goarch string }{p.GOOS, p.GOARCH}
		out := filepath.Join(workDir, t.goos+"-"+t.goarch, agentrun.InstallerName(t.goos))
		if err := agentrun.BuildInstaller(ctx, t.goos, t.goarch, out); err != nil {
			return in, err
		}
		content, err := os.ReadFile(out)
		if err != nil {
			return in, fmt.Errorf("read installer build: %w", err)
		}
		sha, err := agentrun.PublishInstaller(ctx, api, in.Bucket, in.KeyPrefix, t.goos, content)
		if err != nil {
			return in, err
		}
		switch t.goos + "/" + t.goarch {
		case "linux/amd64":
			in.SHA256LinuxAmd64 = sha
		case "linux/arm64":
			in.SHA256LinuxArm64 = sha
		case "windows/amd64":
			in.SHA256WindowsAmd64 = sha
		}
	}
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
