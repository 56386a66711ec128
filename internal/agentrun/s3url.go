package agentrun

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// S3Location is what an aws:downloadContent S3 path names.
type S3Location struct {
	Bucket, Key, Region string
}

// The host forms SSM Agent's s3util.ParseAmazonS3URL accepts (aws/amazon-ssm-agent
// agent/s3util/s3uri.go): VPC endpoint hosts, then public S3 hosts with optional
// website, accelerate and dual-stack labels; the bucket is the host's first
// labels (virtual-hosted style) or the path's first segment (path style).
var (
	vpceHost = regexp.MustCompile(`^((.+)\.)?(bucket|accesspoint|control)\.vpce-[-a-z0-9]+\.s3[.-](([-a-z0-9]+)\.)?vpce\.` +
		`(amazonaws\.com|amazonaws\.com\.cn|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)`)
	publicHost = regexp.MustCompile(`^((.+)\.)?s3[.-](website[-.])?(accelerate\.)?(dualstack[-.])?(([-a-z0-9]+)\.)?` +
		`(amazonaws\.com|amazonaws\.com\.cn|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)`)
)

// ParseS3URL parses an aws:downloadContent S3 sourceInfo path the way SSM
// Agent does: "+" stands for a space (the agent rewrites it to %20 before
// parsing), a region-less host means us-east-1, and the key may be empty or
// end with "/" (a folder).
func ParseS3URL(raw string) (S3Location, error) {
	raw = strings.ReplaceAll(strings.TrimSpace(raw), "+", "%20")
	u, err := url.Parse(raw)
	if err != nil {
		return S3Location{}, fmt.Errorf("S3 path %q: %w", raw, err)
	}
	var loc S3Location
	if m := vpceHost.FindStringSubmatch(u.Host); m != nil {
		loc.Bucket, loc.Region = m[2], m[5]
	} else if m := publicHost.FindStringSubmatch(u.Host); m != nil {
		loc.Bucket, loc.Region = m[2], m[7]
	} else {
		return S3Location{}, fmt.Errorf("invalid S3 path parameter %q: not an S3 URL", raw)
	}
	path := u.Path
	if loc.Bucket == "" {
		path = strings.TrimPrefix(path, "/")
		bucket, key, _ := strings.Cut(path, "/")
		loc.Bucket, loc.Key = bucket, key
	} else {
		loc.Key = strings.TrimPrefix(path, "/")
	}
	if loc.Bucket == "" {
		return S3Location{}, fmt.Errorf("invalid S3 path parameter %q: no bucket", raw)
	}
	if strings.EqualFold(loc.Region, "external-1") || loc.Region == "" {
		loc.Region = "us-east-1"
	}
	return loc, nil
}
