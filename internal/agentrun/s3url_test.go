package agentrun

import (
	"strings"
	"testing"
)

// The URL forms SSM Agent's s3util.ParseAmazonS3URL accepts.
func TestParseS3URL(t *testing.T) {
	tests := []struct {
		url  string
		want S3Location
		err  string
	}{
		{"https://s3.eu-west-1.amazonaws.com/bucket/installer/ab/certferry-node", S3Location{"bucket", "installer/ab/certferry-node", "eu-west-1"}, ""},
		{"https://s3.amazonaws.com/bucket/key", S3Location{"bucket", "key", "us-east-1"}, ""},
		{"https://s3-external-1.amazonaws.com/bucket/key", S3Location{"bucket", "key", "us-east-1"}, ""},
		{"https://bucket.s3.eu-west-1.amazonaws.com/a/b", S3Location{"bucket", "a/b", "eu-west-1"}, ""},
		{"https://my.dotted.bucket.s3.amazonaws.com/a", S3Location{"my.dotted.bucket", "a", "us-east-1"}, ""},
		{"https://s3.dualstack.ap-south-1.amazonaws.com/bucket/k", S3Location{"bucket", "k", "ap-south-1"}, ""},
		{"https://s3.cn-north-1.amazonaws.com.cn/bucket/k", S3Location{"bucket", "k", "cn-north-1"}, ""},
		{"https://mybucket.bucket.vpce-1a2b3c4d-5e6f.s3.us-east-2.vpce.amazonaws.com/k", S3Location{"mybucket", "k", "us-east-2"}, ""},
		{"https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-2.vpce.amazonaws.com/mybucket/k", S3Location{"mybucket", "k", "us-east-2"}, ""},
		{"https://s3.us-east-1.amazonaws.com/bucket/folder/", S3Location{"bucket", "folder/", "us-east-1"}, ""},
		{"https://s3.us-east-1.amazonaws.com/bucket/a+b.txt", S3Location{"bucket", "a b.txt", "us-east-1"}, ""},
		{"  https://s3.us-east-1.amazonaws.com/bucket/k  ", S3Location{"bucket", "k", "us-east-1"}, ""},
		{"https://example.com/bucket/key", S3Location{}, "not an S3 URL"},
		{"https://s3.us-east-1.amazonaws.com/", S3Location{}, "no bucket"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseS3URL(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
