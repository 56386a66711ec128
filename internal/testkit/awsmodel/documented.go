package awsmodel

import (
	"fmt"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Constraints AWS documents in the model's member documentation (or its
// API Reference) but not as model traits. Each names its page.

// secretName: "CreateSecret" (Secrets Manager API Reference), Name: "The
// secret name can contain ASCII letters, numbers, and the following
// characters: /_+=.@-".
var secretName = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)

// SNSMessageLimit: "Publish" (Amazon SNS API Reference), Message: "at most
// 256 KB in size (262,144 bytes, not 262,144 characters)".
const SNSMessageLimit = 262144

func documented(req Request) []Violation {
	in, _ := req.Input.(map[string]any)
	var out []Violation
	add := func(member, format string, a ...any) {
		out = append(out, Violation{Service: req.Service, Operation: req.Operation, Member: member, Constraint: "documented",
			Message: fmt.Sprintf("Value at '%s' failed to satisfy constraint: ", member) + fmt.Sprintf(format, a...)})
	}
	switch req.Op() {
	case "sns.Publish":
		// "Publish" (Amazon SNS API Reference), Subject: "Subjects must be
		// UTF-8 text with no line breaks or control characters, and less
		// than 100 characters long."
		if s, ok := in["Subject"].(string); ok {
			if n := utf8.RuneCountInString(s); n >= 100 {
				add("Subject", "Subject must be less than 100 characters long (has %d)", n)
			}
			for _, r := range s {
				if unicode.IsControl(r) {
					add("Subject", "Subject must have no line breaks or control characters")
					break
				}
			}
		}
		if m, ok := in["Message"].(string); ok && len(m) > SNSMessageLimit {
			add("Message", "Message must be at most 256 KB (262,144 bytes), has %d bytes", len(m))
		}
	case "secretsmanager.CreateSecret":
		if n, ok := in["Name"].(string); ok && !secretName.MatchString(n) {
			add("Name", "the secret name can contain ASCII letters, numbers, and /_+=.@- only")
		}
	case "secretsmanager.DeleteSecret":
		// "DeleteSecret" (Secrets Manager API Reference),
		// RecoveryWindowInDays: "The number of days from 7 to 30".
		if w, ok := in["RecoveryWindowInDays"]; ok {
			if d, err := strconv.ParseFloat(fmt.Sprint(w), 64); err != nil || d < 7 || d > 30 {
				add("RecoveryWindowInDays", "the recovery window must be from 7 to 30 days (is %v)", w)
			}
		}
	}
	return out
}
