package samtemplate

import (
	"regexp"
	"strings"
	"testing"
)

// apiCallerResource is ApiCallerPolicy's one resource as yaml.v3 reads the
// !Sub string: every method and route of this stack's API, stage v1.
const apiCallerResource = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/v1/*/*"

// iamMatch reports whether an IAM resource pattern matches arn: * matches
// any run of characters (slashes included), ? any one character (IAM User
// Guide, "IAM JSON policy elements: Resource").
func iamMatch(pattern, arn string) bool {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(arn)
}

func TestIAMMatch(t *testing.T) {
	tests := []struct {
		pattern, arn string
		want         bool
	}{
		{"a:api/v1/*/*", "a:api/v1/GET/certificates/shop-web", true},
		{"a:api/v1/*/*", "a:api/v1/GET", false},
		{"a:api/v1/*/*", "a:api/v2/GET/certificates", false},
		{"a:api/v1/*/*", "a:other/v1/GET/certificates", false},
		{"a:api/v?/*", "a:api/v1/x", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+" "+tc.arn, func(t *testing.T) {
			if got := iamMatch(tc.pattern, tc.arn); got != tc.want {
				t.Fatalf("iamMatch = %v, want %v", got, tc.want)
			}
		})
	}
}
