// Package spec defines what an operator asks certferry to distribute — a
// named ACM certificate, its targets and install options — and validates it.
// Everything a node will see passes through here before it is stored.
package spec

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// ErrInvalid wraps every validation failure; FieldError says which field.
var ErrInvalid = errors.New("invalid request")

// FieldError is a validation failure on one field of a request.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid builds a FieldError.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Patterns shared with the SSM document's allowedPattern values; the
// document tests check the two stay in step.
var (
	NamePattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	PathPattern       = regexp.MustCompile(`^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$`)
	ServicePattern    = regexp.MustCompile(`^[A-Za-z0-9](\.?[A-Za-z0-9@_-]){0,63}$`)
	ServerNamePattern = regexp.MustCompile(`^[A-Za-z0-9]((\.?[A-Za-z0-9-]){0,250}\.?[A-Za-z0-9])?$`)
	StorePattern      = regexp.MustCompile(`^(LocalMachine|CurrentUser)\\[A-Za-z][A-Za-z0-9]{0,63}$`)
	IISSitePattern    = regexp.MustCompile(`^[A-Za-z0-9](\.?[A-Za-z0-9 _-]){0,127}$`)
	// Instance ids as SendCommand's InstanceIds accept them (the API model's
	// InstanceId pattern: i- with 8 or 17 characters, mi- with 17).
	InstanceIDPattern = regexp.MustCompile(`^(i-([0-9a-f]{8}|[0-9a-f]{17})|mi-[0-9a-f]{17})$`)
	// Tag keys and values: the AWS tag character set (letters, digits,
	// spaces, _ . : / = + - @), without leading or trailing space.
	tagKeyPattern = regexp.MustCompile(`^[\p{L}\p{N}_.:/=+\-@]([\p{L}\p{Z}\p{N}_.:/=+\-@]{0,126}[\p{L}\p{N}_.:/=+\-@])?$`)
	// targetTagKeyPattern is a tag key SendCommand can target as tag:<key>:
	// the model's Target Key pattern has no '+' (^[\p{L}\p{Z}\p{N}_.:/=\-@]*$).
	targetTagKeyPattern = regexp.MustCompile(`^[\p{L}\p{N}_.:/=\-@]([\p{L}\p{Z}\p{N}_.:/=\-@]{0,126}[\p{L}\p{N}_.:/=\-@])?$`)
	tagValuePattern     = regexp.MustCompile(`^([\p{L}\p{N}_.:/=+\-@]([\p{L}\p{Z}\p{N}_.:/=+\-@]{0,254}[\p{L}\p{N}_.:/=+\-@])?)?$`)
)

// Target keys SSM SendCommand accepts that certferry supports.
const (
	TargetInstanceIDs = "InstanceIds"
	TargetTagKey      = "tag-key"
	TargetTagPrefix   = "tag:"
	maxTargets        = 5
	maxTargetValues   = 50
)

// Target selects nodes, in SSM's Targets grammar.
type Target struct {
	Key    string   `json:"key" dynamodbav:"key"`
	Values []string `json:"values" dynamodbav:"values"`
}

// Linux says where and how a Linux node installs the certificate.
type Linux struct {
	CertPath      string `json:"certPath" dynamodbav:"certPath"`
	KeyPath       string `json:"keyPath" dynamodbav:"keyPath"`
	ReloadService string `json:"reloadService" dynamodbav:"reloadService"`
	VerifyPort    *int   `json:"verifyPort,omitempty" dynamodbav:"verifyPort"`
	ServerName    string `json:"serverName" dynamodbav:"serverName"`
}

// Windows says where a Windows node imports the certificate.
type Windows struct {
	Store   string `json:"store" dynamodbav:"store"`
	IISSite string `json:"iisSite" dynamodbav:"iisSite"`
}

// Spec is one named distribution of one ACM certificate.
type Spec struct {
	Name           string   `json:"name" dynamodbav:"name"`
	CertificateARN string   `json:"certificateArn" dynamodbav:"certificateArn"`
	Targets        []Target `json:"targets" dynamodbav:"targets"`
	Linux          Linux    `json:"linux" dynamodbav:"linux"`
	Windows        Windows  `json:"windows" dynamodbav:"windows"`
}

// Defaults, as in the design brief.
const (
	DefaultCertDir    = "/etc/ssl/certs"
	DefaultKeyDir     = "/etc/ssl/private"
	DefaultVerifyPort = 443
	DefaultStore      = `LocalMachine\My`
)

// ApplyDefaults fills what the operator left out. VerifyPort defaults to 443
// only when a service is reloaded: with nothing reloaded the old certificate
// would still be served and the check would roll back every install (see
// docs/departures.md).
func (s *Spec) ApplyDefaults() {
	if s.Linux.CertPath == "" {
		s.Linux.CertPath = path.Join(DefaultCertDir, s.Name+".pem")
	}
	if s.Linux.KeyPath == "" {
		s.Linux.KeyPath = path.Join(DefaultKeyDir, s.Name+".key")
	}
	if s.Linux.VerifyPort == nil {
		p := 0
		if s.Linux.ReloadService != "" {
			p = DefaultVerifyPort
		}
		s.Linux.VerifyPort = &p
	}
	if s.Windows.Store == "" {
		s.Windows.Store = DefaultStore
	}
}

// Validate checks every field against the grammar the node and SSM accept.
// It returns a *FieldError for the first bad field.
func (s *Spec) Validate(arnOK func(string) error) error {
	if s.Name == "" {
		return Invalid("name", "is required")
	}
	if !NamePattern.MatchString(s.Name) {
		return Invalid("name", "must match %s (lower-case letters, digits and '-', at most 63 characters)", NamePattern)
	}
	if s.CertificateARN == "" {
		return Invalid("certificateArn", "is required")
	}
	if err := arnOK(s.CertificateARN); err != nil {
		return Invalid("certificateArn", "%v", err)
	}
	if err := ValidateTargets(s.Targets); err != nil {
		return err
	}
	l := s.Linux
	if err := validatePath("linux.certPath", l.CertPath); err != nil {
		return err
	}
	if err := validatePath("linux.keyPath", l.KeyPath); err != nil {
		return err
	}
	if l.CertPath == l.KeyPath {
		return Invalid("linux.keyPath", "must differ from linux.certPath")
	}
	if l.ReloadService != "" && !ServicePattern.MatchString(l.ReloadService) {
		return Invalid("linux.reloadService", "must match %s", ServicePattern)
	}
	if l.VerifyPort != nil && (*l.VerifyPort < 0 || *l.VerifyPort > 65535) {
		return Invalid("linux.verifyPort", "must be 0 (skip the check) to 65535")
	}
	if l.ServerName != "" && !ServerNamePattern.MatchString(l.ServerName) {
		return Invalid("linux.serverName", "must be a DNS host name (letters, digits, '.', '-')")
	}
	if s.Windows.Store != "" && !StorePattern.MatchString(s.Windows.Store) {
		return Invalid("windows.store", `must be LocalMachine\<Store> or CurrentUser\<Store>`)
	}
	if s.Windows.IISSite != "" && !IISSitePattern.MatchString(s.Windows.IISSite) {
		return Invalid("windows.iisSite", "must match %s", IISSitePattern)
	}
	return nil
}

func validatePath(field, p string) error {
	if p == "" {
		return Invalid(field, "is required")
	}
	if len(p) > 1024 || !PathPattern.MatchString(p) {
		return Invalid(field, "must be a clean absolute file path of letters, digits and / . _ - (no '.' or '..' segment, no segment starting with '.')")
	}
	return nil
}

// ValidateTargets checks targets against SSM's grammar: 1 to 5 targets,
// each tag:<key>, tag-key or InstanceIds, with 1 to 50 values.
func ValidateTargets(ts []Target) error {
	if len(ts) == 0 {
		return Invalid("targets", "is required: at least one {key, values} target")
	}
	if len(ts) > maxTargets {
		return Invalid("targets", "at most %d targets", maxTargets)
	}
	for i, t := range ts {
		field := fmt.Sprintf("targets[%d]", i)
		if len(t.Values) == 0 || len(t.Values) > maxTargetValues {
			return Invalid(field+".values", "must hold 1 to %d values", maxTargetValues)
		}
		if t.Key == TargetInstanceIDs && len(ts) > 1 {
			return Invalid(field+".key", "InstanceIds cannot be combined with other targets")
		}
		switch {
		case t.Key == TargetInstanceIDs:
			for j, v := range t.Values {
				if !InstanceIDPattern.MatchString(v) {
					return Invalid(fmt.Sprintf("%s.values[%d]", field, j), "must be an EC2 instance id (i- and 8 or 17 hex digits) or a hybrid node id (mi- and 17 hex digits)")
				}
			}
		case t.Key == TargetTagKey:
			for j, v := range t.Values {
				if !tagKeyPattern.MatchString(v) {
					return Invalid(fmt.Sprintf("%s.values[%d]", field, j), "must be a tag key (letters, digits, spaces and _ . : / = + - @, at most 128)")
				}
			}
		case strings.HasPrefix(t.Key, TargetTagPrefix):
			if !targetTagKeyPattern.MatchString(strings.TrimPrefix(t.Key, TargetTagPrefix)) {
				return Invalid(field+".key", "tag key must use letters, digits, spaces and _ . : / = - @ (at most 128; SSM cannot target keys with '+')")
			}
			for j, v := range t.Values {
				if v == "" || !tagValuePattern.MatchString(v) {
					return Invalid(fmt.Sprintf("%s.values[%d]", field, j), "must be a tag value (letters, digits, spaces and _ . : / = + - @, 1 to 256)")
				}
			}
		default:
			return Invalid(field+".key", "must be tag:<key>, tag-key or InstanceIds")
		}
	}
	return nil
}

// InstanceIDs returns the instance ids when the spec targets ids, else nil.
func (s *Spec) InstanceIDs() []string {
	if len(s.Targets) == 1 && s.Targets[0].Key == TargetInstanceIDs {
		return s.Targets[0].Values
	}
	return nil
}

// Wrap attaches a field to a domain error (e.g. a 409 on "name") while
// keeping errors.Is(err, sentinel) true.
func Wrap(sentinel error, field, format string, args ...any) error {
	return &DomainError{Err: sentinel, Field: field, Message: fmt.Sprintf(format, args...)}
}

// DomainError is a non-validation refusal that names a field.
type DomainError struct {
	Err     error
	Field   string
	Message string
}

func (e *DomainError) Error() string { return fmt.Sprintf("%s: %s", e.Err, e.Message) }

// Unwrap exposes the sentinel.
func (e *DomainError) Unwrap() error { return e.Err }
