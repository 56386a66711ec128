package agentrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/certferry/certferry/internal/publish"
)

// InstallerName is the installer's file name per GOOS, as the document's
// download steps name it.
func InstallerName(goos string) string { return publish.Platform{GOOS: goos}.FileName() }

// InstallerKey is where the stack publishes one installer build
// (publish.Key; NODE-CONTRACT.md, Layout): content-addressed, so a command
// in flight always finds the binary whose hash it carries.
func InstallerKey(prefix, sha, goos string) string {
	return publish.Key(prefix, sha, publish.Platform{GOOS: goos})
}

// ObjectPutter is the S3 subset publishing needs.
type ObjectPutter interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ ObjectPutter = (*s3.Client)(nil)

// PublishInstaller stores one installer build under its content address and
// returns its lowercase hex SHA-256, the value commands carry. An object
// already there is left alone (same key, same bytes). The stack publishes
// all three builds at once with internal/publish; this stores one, for a
// rig whose nodes run one platform.
func PublishInstaller(ctx context.Context, api ObjectPutter, bucket, prefix, goos string, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	key := InstallerKey(prefix, sha, goos)
	_, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return sha, nil
	}
	var nf *s3types.NotFound
	if !errors.As(err, &nf) {
		return "", fmt.Errorf("look up installer s3://%s/%s: %w", bucket, key, err)
	}
	_, err = api.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(content),
		ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return "", fmt.Errorf("publish installer s3://%s/%s: %w", bucket, key, err)
	}
	return sha, nil
}

// BuildInstaller builds cmd/certferry-node (from anywhere in the module) for
// goos/goarch into out with the flags the stack's build uses.
func BuildInstaller(ctx context.Context, goos, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/certferry/certferry/cmd/certferry-node")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build certferry-node for %s/%s: %w: %s", goos, goarch, err, msg)
	}
	return nil
}
