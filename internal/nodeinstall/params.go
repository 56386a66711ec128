// Package nodeinstall is certferry's node installer: it fetches a name's
// bundle from Secrets Manager, checks it, installs it as a set of files (or,
// on Windows, into the certificate store and an IIS binding), reloads and
// verifies the service, and rolls back on any failure. Its last output line
// is CERTFERRY_RESULT {json}, which certferry's tracker reads.
package nodeinstall

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Formats the installer writes.
const (
	FormatPEM      = "pem"
	FormatSplit    = "split"
	FormatCombined = "combined"
	FormatPKCS12   = "pkcs12"
	FormatJKS      = "jks"
)

// DefaultAllowedPrefixes are the directories target paths must lie under when
// the command does not name others.
const DefaultAllowedPrefixes = "/etc/ssl:/etc/pki:/etc/nginx:/etc/httpd:/etc/apache2:/etc/haproxy:/opt:/srv:/var/lib"

// The same grammar as the SSM document's allowedPattern values (defence in
// depth: an agent older than 3.3.2746.0 substitutes {{Name}} text, and the
// binary may be run by hand).
var (
	secretIDPattern    = regexp.MustCompile(`^([A-Za-z0-9_+=@][A-Za-z0-9_+=@-]*/){1,4}[a-z0-9][a-z0-9-]{0,62}$`)
	namePattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	fingerprintPattern = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)
	regionPattern      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	pathPattern        = regexp.MustCompile(`^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$`)
	servicePattern     = regexp.MustCompile(`^([A-Za-z0-9](\.?[A-Za-z0-9@_-]){0,63})?$`)
	portPattern        = regexp.MustCompile(`^([0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`)
	hostPattern        = regexp.MustCompile(`^([A-Za-z0-9]((\.?[A-Za-z0-9-]){0,250}\.?[A-Za-z0-9])?)?$`)
	ownerPattern       = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})?$`)
	modePattern        = regexp.MustCompile(`^(0?[0-7]{3})?$`)
	storePattern       = regexp.MustCompile(`^(LocalMachine|CurrentUser)\\[A-Za-z][A-Za-z0-9]{0,63}$`)
	iisSitePattern     = regexp.MustCompile(`^([A-Za-z0-9](\.?[A-Za-z0-9 _-]){0,127})?$`)
)

// Params are one command's install parameters, read from SSM_<Name>.
type Params struct {
	SecretID            string
	CertName            string
	ExpectedFingerprint string
	Region              string

	Format       string
	CertPath     string
	KeyPath      string
	ChainPath    string
	KeystorePath string
	Owner, Group string
	CertMode     string // "" or octal, e.g. "0644"
	KeyMode      string

	ReloadService string
	VerifyPort    int // 0: no check
	VerifyAddress string
	ServerName    string
	StartTLS      string

	AllowedPrefixes []string

	CertStore string
	IisSite   string
}

// ParamsFromEnv reads SSM_<Name> variables through lookup (os.LookupEnv in
// main) and validates every one; fallbackRegion is AWS_SSM_REGION_NAME.
func ParamsFromEnv(lookup func(string) (string, bool)) (Params, error) {
	get := func(name string) string {
		v, _ := lookup("SSM_" + name)
		return strings.TrimSpace(v)
	}
	p := Params{
		SecretID:            get("SecretId"),
		CertName:            get("CertName"),
		ExpectedFingerprint: get("ExpectedFingerprint"),
		Region:              get("Region"),
		Format:              get("Format"),
		CertPath:            get("CertPath"),
		KeyPath:             get("KeyPath"),
		ChainPath:           get("ChainPath"),
		KeystorePath:        get("KeystorePath"),
		Owner:               get("Owner"),
		Group:               get("Group"),
		CertMode:            get("CertMode"),
		KeyMode:             get("KeyMode"),
		ReloadService:       get("ReloadService"),
		VerifyAddress:       get("VerifyAddress"),
		ServerName:          get("ServerName"),
		StartTLS:            get("Starttls"),
		CertStore:           get("CertStore"),
		IisSite:             get("IisSite"),
	}
	if p.Region == "" {
		if r, ok := lookup("AWS_SSM_REGION_NAME"); ok {
			p.Region = strings.TrimSpace(r)
		}
	}
	var errs []error
	port := get("VerifyPort")
	switch {
	case port == "":
		p.VerifyPort = 443 // the document's default
	case !portPattern.MatchString(port):
		errs = append(errs, errors.New("bad VerifyPort: must be 0 to 65535"))
	default:
		p.VerifyPort, _ = strconv.Atoi(port)
	}
	prefixes := get("AllowedPrefixes")
	if prefixes == "" {
		prefixes = DefaultAllowedPrefixes
	}
	for pr := range strings.SplitSeq(prefixes, ":") {
		if pr == "" {
			continue
		}
		if len(pr) > 1024 || !pathPattern.MatchString(pr) || hasDotSegment(pr) {
			errs = append(errs, fmt.Errorf("bad AllowedPrefixes entry %q: must be an absolute directory", sanitize(pr, 80)))
			continue
		}
		p.AllowedPrefixes = append(p.AllowedPrefixes, filepath.Clean(pr))
	}
	if len(p.AllowedPrefixes) == 0 {
		errs = append(errs, errors.New("bad AllowedPrefixes: no directory given"))
	}
	if err := errors.Join(append(errs, p.validate())...); err != nil {
		return p, err
	}
	return p, nil
}

// applyDefaults fills the values the document defaults when a parameter is
// not given.
func (p *Params) applyDefaults() {
	if p.Format == "" {
		p.Format = FormatPEM
	}
	if p.VerifyAddress == "" {
		p.VerifyAddress = "127.0.0.1"
	}
	if p.CertStore == "" {
		p.CertStore = `LocalMachine\My`
	}
}

func (p *Params) validate() error {
	p.applyDefaults()
	var errs []error
	bad := func(name, rule string) { errs = append(errs, fmt.Errorf("bad %s: %s", name, rule)) }
	if !secretIDPattern.MatchString(p.SecretID) {
		bad("SecretId", "must be <prefix>/<name>")
	}
	if !namePattern.MatchString(p.CertName) {
		bad("CertName", "must match "+namePattern.String())
	}
	if !fingerprintPattern.MatchString(p.ExpectedFingerprint) {
		bad("ExpectedFingerprint", "must be 32 upper-case hex bytes separated by ':'")
	}
	if !regionPattern.MatchString(p.Region) {
		bad("Region", "must be a region name such as us-east-1")
	}
	switch p.Format {
	case FormatPEM, FormatSplit, FormatCombined, FormatPKCS12, FormatJKS:
	default:
		bad("Format", "must be pem, split, combined, pkcs12 or jks")
	}
	for _, f := range []struct{ name, v string }{{"CertPath", p.CertPath}, {"KeyPath", p.KeyPath}, {"ChainPath", p.ChainPath}, {"KeystorePath", p.KeystorePath}} {
		if f.v != "" && (len(f.v) > 1024 || !pathPattern.MatchString(f.v) || hasDotSegment(f.v)) {
			bad(f.name, "must be an absolute path of letters, digits and / . _ - without '.' or '..' segments")
		}
	}
	if !ownerPattern.MatchString(p.Owner) {
		bad("Owner", "must be a user name or numeric id")
	}
	if !ownerPattern.MatchString(p.Group) {
		bad("Group", "must be a group name or numeric id")
	}
	if !modePattern.MatchString(p.CertMode) {
		bad("CertMode", "must be an octal mode such as 0644")
	}
	if !modePattern.MatchString(p.KeyMode) {
		bad("KeyMode", "must be an octal mode such as 0600")
	}
	if !servicePattern.MatchString(p.ReloadService) || strings.Contains(p.ReloadService, "..") {
		bad("ReloadService", "must be a service name")
	}
	if net.ParseIP(p.VerifyAddress) == nil && (!hostPattern.MatchString(p.VerifyAddress) || strings.Contains(p.VerifyAddress, "..")) {
		bad("VerifyAddress", "must be an IPv4 or IPv6 address or a host name")
	}
	if !hostPattern.MatchString(p.ServerName) || strings.Contains(p.ServerName, "..") {
		bad("ServerName", "must be a DNS name")
	}
	switch p.StartTLS {
	case "", "smtp", "imap", "pop3":
	default:
		bad("Starttls", "must be empty, smtp, imap or pop3")
	}
	if !storePattern.MatchString(p.CertStore) {
		bad("CertStore", `must be LocalMachine\<Store> or CurrentUser\<Store>`)
	}
	if !iisSitePattern.MatchString(p.IisSite) || strings.Contains(p.IisSite, "..") {
		bad("IisSite", "must be an IIS site name")
	}
	return errors.Join(errs...)
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// sanitize keeps only characters safe in the result line and bounds length.
func sanitize(s string, max int) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(" ._:;/=+@,()'-", c) >= 0
		if !ok {
			b[i] = ' '
		}
	}
	if len(b) > max {
		b = append(b[:max-3], "..."...)
	}
	return string(b)
}
