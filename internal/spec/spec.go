// Package spec defines what an operator asks certferry to distribute — a
// named ACM certificate, its targets and install options — and validates it.
// Everything a node will see passes through here before it is stored.
package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
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
	// The node installer's options (NODE-CONTRACT.md "Document parameters").
	FormatPattern   = regexp.MustCompile(`^(pem|split|combined|pkcs12|jks)?$`)
	OwnerPattern    = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})?$`) // Owner and Group
	ModePattern     = regexp.MustCompile(`^(0?[0-7]{3})?$`)                         // CertMode and KeyMode
	StarttlsPattern = regexp.MustCompile(`^(smtp|imap|pop3)?$`)
	// VerifyAddress: empty (127.0.0.1), an IPv4 or IPv6 literal (no zone,
	// no brackets) or a host name. The pattern is the document's coarse
	// guard; Validate parses IP literals exactly.
	VerifyAddressPattern = regexp.MustCompile(`^([0-9A-Fa-f:.]{2,45}|[A-Za-z0-9]((\.?[A-Za-z0-9-]){0,250}\.?[A-Za-z0-9])?)?$`)
	// AllowedPrefixesPattern: one or more absolute directories joined by ':'
	// (the stack parameter AllowedPathPrefixes and the document parameter
	// AllowedPrefixes).
	AllowedPrefixesPattern = regexp.MustCompile(`^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+(:(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+)*$`)
	// Installer delivery parameters: a lowercase hex SHA-256 and the key
	// prefix of the installer objects.
	SHA256Pattern    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	KeyPrefixPattern = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]{0,62}/){1,4}$`)
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

// Linux says where and how a Linux node installs the certificate. The
// fields after ServerName were added with the Go node installer; empty means
// "not given" (format pem, ownership and mode of an existing file kept,
// verification on 127.0.0.1 without STARTTLS), so older bodies and stored
// specs mean what they meant.
type Linux struct {
	CertPath      string `json:"certPath" dynamodbav:"certPath"`
	KeyPath       string `json:"keyPath" dynamodbav:"keyPath"`
	ReloadService string `json:"reloadService" dynamodbav:"reloadService"`
	VerifyPort    *int   `json:"verifyPort,omitempty" dynamodbav:"verifyPort"`
	ServerName    string `json:"serverName" dynamodbav:"serverName"`

	Format        string `json:"format,omitempty" dynamodbav:"format,omitempty"`
	ChainPath     string `json:"chainPath,omitempty" dynamodbav:"chainPath,omitempty"`
	KeystorePath  string `json:"keystorePath,omitempty" dynamodbav:"keystorePath,omitempty"`
	Owner         string `json:"owner,omitempty" dynamodbav:"owner,omitempty"`
	Group         string `json:"group,omitempty" dynamodbav:"group,omitempty"`
	CertMode      string `json:"certMode,omitempty" dynamodbav:"certMode,omitempty"`
	KeyMode       string `json:"keyMode,omitempty" dynamodbav:"keyMode,omitempty"`
	VerifyAddress string `json:"verifyAddress,omitempty" dynamodbav:"verifyAddress,omitempty"`
	Starttls      string `json:"starttls,omitempty" dynamodbav:"starttls,omitempty"`
}

// Formats a Linux node writes (linux.format; empty is pem).
const (
	FormatPEM      = "pem"      // leaf + chain in certPath, key in keyPath
	FormatSplit    = "split"    // leaf in certPath, chain in chainPath, key in keyPath
	FormatCombined = "combined" // leaf + chain + key in certPath
	FormatPKCS12   = "pkcs12"   // keystorePath, protected by the name's keystore password
	FormatJKS      = "jks"      // keystorePath, protected by the name's keystore password
)

// EffectiveFormat is the format the node writes: Format, or pem.
func (l Linux) EffectiveFormat() string {
	if l.Format == "" {
		return FormatPEM
	}
	return l.Format
}

// UsesKeystore reports whether the format needs the name's keystore
// password secret (<prefix><name>/keystore).
func (l Linux) UsesKeystore() bool {
	f := l.EffectiveFormat()
	return f == FormatPKCS12 || f == FormatJKS
}

// pathField is one of the Linux paths with its request field name.
type pathField struct {
	field, value string
	holdsKey     bool // the file holds the private key (its mode must not reach other users)
}

// paths returns the paths the format writes, in a fixed order.
func (l Linux) paths() []pathField {
	switch l.EffectiveFormat() {
	case FormatSplit:
		return []pathField{{"linux.certPath", l.CertPath, false}, {"linux.chainPath", l.ChainPath, false}, {"linux.keyPath", l.KeyPath, true}}
	case FormatCombined:
		return []pathField{{"linux.certPath", l.CertPath, true}}
	case FormatPKCS12, FormatJKS:
		return []pathField{{"linux.keystorePath", l.KeystorePath, true}}
	default:
		return []pathField{{"linux.certPath", l.CertPath, false}, {"linux.keyPath", l.KeyPath, true}}
	}
}

// DefaultAllowedPrefixes are the directories target paths must lie under
// unless the stack names others (parameter AllowedPathPrefixes).
var DefaultAllowedPrefixes = []string{"/etc/ssl", "/etc/pki", "/etc/nginx", "/etc/httpd", "/etc/apache2", "/etc/haproxy", "/opt", "/srv", "/var/lib"}

// InstallerStateDir is the node installer's own directory on Linux (journal,
// backups, cached installers); no target path may lie there.
const InstallerStateDir = "/var/lib/certferry"

// ParsePrefixes splits a ':'-separated list of allowed directories.
func ParsePrefixes(s string) ([]string, error) {
	if len(s) > 4096 || !AllowedPrefixesPattern.MatchString(s) {
		return nil, fmt.Errorf("must be absolute directories of letters, digits and / . _ - joined by ':' (no '.' or '..' segment, no trailing '/'), e.g. %s", strings.Join(DefaultAllowedPrefixes, ":"))
	}
	return strings.Split(s, ":"), nil
}

// Under reports whether p lies strictly under one of prefixes.
func Under(p string, prefixes []string) bool {
	for _, d := range prefixes {
		if strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
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

	// Rollout and lifecycle options (options.go); zero values keep the
	// behaviour of a spec without them.
	Rollout            *Rollout            `json:"rollout,omitempty" dynamodbav:"rollout,omitempty"`
	MaintenanceWindows []MaintenanceWindow `json:"maintenanceWindows,omitempty" dynamodbav:"maintenanceWindows,omitempty"`
	// SafetyMarginDays overrides the expiry override's margin (default: the
	// larger of 7 days and a tenth of the certificate's lifetime).
	SafetyMarginDays *int     `json:"safetyMarginDays,omitempty" dynamodbav:"safetyMarginDays,omitempty"`
	Approval         string   `json:"approval,omitempty" dynamodbav:"approval,omitempty"`
	Probes           []string `json:"probes,omitempty" dynamodbav:"probes,omitempty"`
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
//
// Paths are defaulted only where the format uses them: certPath for pem,
// split and combined, keyPath for pem and split (a keystore has no default
// path: keystorePath is required).
func (s *Spec) ApplyDefaults() {
	f := s.Linux.EffectiveFormat()
	if s.Linux.CertPath == "" && (f == FormatPEM || f == FormatSplit || f == FormatCombined) {
		s.Linux.CertPath = path.Join(DefaultCertDir, s.Name+".pem")
	}
	if s.Linux.KeyPath == "" && (f == FormatPEM || f == FormatSplit) {
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
	s.normaliseOptions()
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
	if err := validateLinuxFiles(l); err != nil {
		return err
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
	if err := validateVerifyAddress(l.VerifyAddress); err != nil {
		return err
	}
	if !StarttlsPattern.MatchString(l.Starttls) {
		return Invalid("linux.starttls", "must be smtp, imap or pop3 (or absent for TLS from the first byte)")
	}
	if s.Windows.Store != "" && !StorePattern.MatchString(s.Windows.Store) {
		return Invalid("windows.store", `must be LocalMachine\<Store> or CurrentUser\<Store>`)
	}
	if s.Windows.IISSite != "" && !IISSitePattern.MatchString(s.Windows.IISSite) {
		return Invalid("windows.iisSite", "must match %s", IISSitePattern)
	}
	return s.validateOptions()
}

// validateLinuxFiles checks the format, the paths it needs (and only
// those), ownership and modes.
func validateLinuxFiles(l Linux) error {
	if !FormatPattern.MatchString(l.Format) {
		return Invalid("linux.format", "must be pem, split, combined, pkcs12 or jks")
	}
	f := l.EffectiveFormat()
	// Paths the format does not use are refused rather than ignored (a
	// chainPath with pem most likely meant split), except keyPath with
	// combined: the key goes into certPath, and a keyPath is ignored.
	unused := map[string]string{}
	switch f {
	case FormatPEM:
		unused["linux.chainPath"], unused["linux.keystorePath"] = l.ChainPath, l.KeystorePath
	case FormatSplit:
		unused["linux.keystorePath"] = l.KeystorePath
	case FormatCombined:
		unused["linux.chainPath"], unused["linux.keystorePath"] = l.ChainPath, l.KeystorePath
	case FormatPKCS12, FormatJKS:
		unused["linux.certPath"], unused["linux.keyPath"], unused["linux.chainPath"] = l.CertPath, l.KeyPath, l.ChainPath
	}
	for _, field := range []string{"linux.certPath", "linux.keyPath", "linux.chainPath", "linux.keystorePath"} {
		if unused[field] != "" {
			return Invalid(field, "is not used with format %s (%s)", f, formatPaths[f])
		}
	}
	if f == FormatCombined && l.KeyPath != "" {
		if err := validatePath("linux.keyPath", l.KeyPath); err != nil {
			return err
		}
	}
	seen := map[string]string{}
	for _, p := range l.paths() {
		if p.value == "" {
			return Invalid(p.field, "is required with format %s (%s)", f, formatPaths[f])
		}
		if err := validatePath(p.field, p.value); err != nil {
			return err
		}
		if other, dup := seen[p.value]; dup {
			return Invalid(p.field, "must differ from %s", other)
		}
		seen[p.value] = p.field
	}
	if !OwnerPattern.MatchString(l.Owner) || !validID(l.Owner) {
		return Invalid("linux.owner", "must be a user name (lower-case letters, digits, '_' and '-', at most 32, not starting with a digit or '-') or a numeric id")
	}
	if !OwnerPattern.MatchString(l.Group) || !validID(l.Group) {
		return Invalid("linux.group", "must be a group name (lower-case letters, digits, '_' and '-', at most 32, not starting with a digit or '-') or a numeric id")
	}
	if !ModePattern.MatchString(l.CertMode) {
		return Invalid("linux.certMode", `must be an octal file mode such as "0644" (a string of 3 octal digits, optionally after a 0)`)
	}
	if !ModePattern.MatchString(l.KeyMode) {
		return Invalid("linux.keyMode", `must be an octal file mode such as "0600" or "0640" (a string of 3 octal digits, optionally after a 0)`)
	}
	// A file holding the private key is never readable or writable by other
	// users: keyMode always, certMode when certPath holds the key (combined).
	if m := l.KeyMode; m != "" && m[len(m)-1] != '0' {
		return Invalid("linux.keyMode", "must not give other users access to the private key (last digit 0, e.g. 0600 or 0640 with linux.group)")
	}
	if m := l.CertMode; f == FormatCombined && m != "" && m[len(m)-1] != '0' {
		return Invalid("linux.certMode", "must not give other users access: with format combined certPath holds the private key (last digit 0, e.g. 0600 or 0640)")
	}
	return nil
}

// formatPaths says, for error messages, which paths each format writes.
var formatPaths = map[string]string{
	FormatPEM:      "certPath gets the certificate and chain, keyPath the key",
	FormatSplit:    "certPath gets the certificate, chainPath the chain, keyPath the key",
	FormatCombined: "certPath gets the certificate, chain and key",
	FormatPKCS12:   "keystorePath gets the keystore",
	FormatJKS:      "keystorePath gets the keystore",
}

// validID keeps numeric user and group ids within 32 bits (4294967295 is
// (uid_t)-1, "no change" to chown).
func validID(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n < 1<<32-1
}

// validateVerifyAddress accepts empty, an IPv4 or IPv6 literal (no zone),
// or a DNS host name.
func validateVerifyAddress(a string) error {
	if a == "" {
		return nil
	}
	const msg = "must be an IPv4 or IPv6 address (no brackets, no zone) or a host name"
	if !VerifyAddressPattern.MatchString(a) {
		return Invalid("linux.verifyAddress", msg)
	}
	if strings.Contains(a, ":") || isDottedNumbers(a) {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return Invalid("linux.verifyAddress", msg)
		}
		return nil
	}
	if !ServerNamePattern.MatchString(a) {
		return Invalid("linux.verifyAddress", msg)
	}
	return nil
}

// isDottedNumbers is true for strings of digits and dots only: they are
// meant as IPv4 addresses, never as host names.
func isDottedNumbers(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

// CheckPrefixes refuses a spec whose target paths do not all lie strictly
// under one of prefixes, or lie in the installer's own state directory.
// The node checks the same again.
func (s *Spec) CheckPrefixes(prefixes []string) error {
	l := s.Linux
	fields := l.paths()
	if l.EffectiveFormat() == FormatCombined && l.KeyPath != "" {
		fields = append(fields, pathField{field: "linux.keyPath", value: l.KeyPath})
	}
	for _, p := range fields {
		if p.value == "" {
			continue
		}
		if Under(p.value, []string{InstallerStateDir}) || p.value == InstallerStateDir {
			return Invalid(p.field, "must not lie in %s, the installer's own directory", InstallerStateDir)
		}
		if !Under(p.value, prefixes) {
			return Invalid(p.field, "must lie under one of the allowed directories %s (stack parameter AllowedPathPrefixes)", strings.Join(prefixes, ":"))
		}
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
