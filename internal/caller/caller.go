// Package caller says who asked for an action and when: the caller's IAM
// ARN as API Gateway authenticated it (AWS_IAM authorization), or a local
// identity for the API handler run in the operator's own process. It is
// shared by the API (which reads it from the request), the inventory's
// audit items and the rollout engine (approvals), so that none of them
// imports another for it.
package caller

import (
	"os"
	"os/user"
	"regexp"
	"time"
)

// Caller is who acted and when.
type Caller struct {
	ARN string    `json:"arn"`
	At  time.Time `json:"at"`
}

// LocalPrefix starts the identity of a request that carried no caller
// ARN: the API handler run in this process (`certferry` without -api),
// never a request through API Gateway, which authenticates every caller.
const LocalPrefix = "local:"

var unsafe = regexp.MustCompile(`[^A-Za-z0-9@._+=,-]`)

// Local is the identity of the operator running the handler in-process:
// "local:<os user>" ("local:unknown" when the user cannot be read).
func Local() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	name = unsafe.ReplaceAllString(name, "_")
	if name == "" {
		name = "unknown"
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return LocalPrefix + name
}

// Or returns arn when it is set, else Local(): an action is never
// recorded without an identity.
func Or(arn string) string {
	if arn != "" {
		return arn
	}
	return Local()
}
