// Package publish puts the node installer (cmd/certferry-node, one build per
// platform) into the stack's installer bucket under content-addressed keys,
// and answers the CloudFormation custom resource that does it at deploy time.
//
// Layout (NODE-CONTRACT.md "Layout"): <prefix><sha256>/certferry-node for
// Linux builds and <prefix><sha256>/certferry-node.exe for Windows, where
// <sha256> is the lowercase hex SHA-256 of the object's bytes. Objects are
// immutable: written once (If-None-Match: *), never overwritten and never
// deleted by certferry, so a command already sent always finds the binary
// whose hash it carries.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/certferry/certferry/internal/spec"
)

// Platform is one build of the installer.
type Platform struct{ GOOS, GOARCH string }

// Platforms are the builds the stack publishes.
var Platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"windows", "amd64"}}

func (p Platform) String() string { return p.GOOS + "/" + p.GOARCH }

// FileName is the object's base name: certferry-node, or certferry-node.exe
// on Windows.
func (p Platform) FileName() string {
	if p.GOOS == "windows" {
		return "certferry-node.exe"
	}
	return "certferry-node"
}

// PackageFile is the build's file name in the publisher's Lambda package
// (and in `make installer-binaries INSTALLER_OUT=dir`):
// certferry-node-linux-amd64, certferry-node-linux-arm64,
// certferry-node-windows-amd64.exe.
func (p Platform) PackageFile() string {
	name := "certferry-node-" + p.GOOS + "-" + p.GOARCH
	if p.GOOS == "windows" {
		name += ".exe"
	}
	return name
}

// Key is the object key of a build with the given SHA-256 (lowercase hex).
func Key(prefix, sha string, p Platform) string { return prefix + sha + "/" + p.FileName() }

// Object is one published build.
type Object struct {
	Platform Platform
	Key      string
	SHA256   string // lowercase hex
	Size     int64
}

// Publication is what Publish stored.
type Publication struct {
	Bucket    string
	KeyPrefix string
	Objects   []Object
}

// SHA256 returns the published hash of p's build, or "".
func (pub Publication) SHA256(p Platform) string {
	for _, o := range pub.Objects {
		if o.Platform == p {
			return o.SHA256
		}
	}
	return ""
}

type objectPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ objectPutter = (*s3.Client)(nil)

// Publisher stores installer builds.
type Publisher struct{ api objectPutter }

// NewPublisher returns a Publisher writing through api.
func NewPublisher(api objectPutter) *Publisher { return &Publisher{api: api} }

// Publish stores every platform's build found in dir (named by
// Platform.PackageFile) in bucket under prefix. Every build must be there
// and non-empty before anything is written: a package missing one would
// leave that platform's nodes without an installer.
func (p *Publisher) Publish(ctx context.Context, bucket, prefix, dir string) (Publication, error) {
	if !spec.KeyPrefixPattern.MatchString(prefix) {
		return Publication{}, fmt.Errorf("key prefix %q: must be 1 to 4 segments of letters, digits and . _ - each ending in '/'", prefix)
	}
	pub := Publication{Bucket: bucket, KeyPrefix: prefix}
	for _, pl := range Platforms {
		o, err := hashFile(prefix, pl, filepath.Join(dir, pl.PackageFile()))
		if err != nil {
			return Publication{}, err
		}
		pub.Objects = append(pub.Objects, o)
	}
	for _, o := range pub.Objects {
		if err := p.put(ctx, bucket, o, filepath.Join(dir, o.Platform.PackageFile())); err != nil {
			return Publication{}, err
		}
	}
	return pub, nil
}

// hashFile describes one build: its SHA-256, size and key.
func hashFile(prefix string, pl Platform, file string) (Object, error) {
	f, err := os.Open(file)
	if err != nil {
		return Object{}, fmt.Errorf("open installer build for %s: %w", pl, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return Object{}, fmt.Errorf("hash installer build %s: %w", file, err)
	}
	if size == 0 {
		return Object{}, fmt.Errorf("installer build %s for %s is empty", file, pl)
	}
	o := Object{Platform: pl, SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}
	o.Key = Key(prefix, o.SHA256, pl)
	return o, nil
}

// put writes one build under its content address, once.
func (p *Publisher) put(ctx context.Context, bucket string, o Object, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open installer build for %s: %w", o.Platform, err)
	}
	defer f.Close()
	sum, _ := hex.DecodeString(o.SHA256)
	// Conditional write (S3 User Guide, "How to prevent object overwrites
	// with conditional writes"): If-None-Match: * makes S3 answer 412 when
	// the key exists, 409 when a concurrent write to it is in progress.
	// The key names the content, so an existing object is this build. The
	// checksum makes S3 refuse a body that does not hash to the key.
	for attempt := 1; ; attempt++ {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind %s: %w", file, err)
		}
		_, err = p.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket:         aws.String(bucket),
			Key:            aws.String(o.Key),
			Body:           f,
			ContentLength:  aws.Int64(o.Size),
			ContentType:    aws.String("application/octet-stream"),
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
			IfNoneMatch:    aws.String("*"),
		})
		switch status := httpStatus(err); {
		case err == nil, status == http.StatusPreconditionFailed:
			return nil
		case status == http.StatusConflict && attempt < 3:
			continue // ConditionalRequestConflict: S3 asks to retry
		default:
			return fmt.Errorf("put installer s3://%s/%s: %w", bucket, o.Key, err)
		}
	}
}

// httpStatus is the HTTP status of an S3 error answer, or 0.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed":
			return http.StatusPreconditionFailed
		case "ConditionalRequestConflict":
			return http.StatusConflict
		}
	}
	return 0
}
