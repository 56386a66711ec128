// Package config turns the environment template.yaml sets into plain values.
// Only main packages call it, with os.LookupEnv.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Config is every setting a certferry function may read.
type Config struct {
	Table           string // CERTFERRY_TABLE
	SecretPrefix    string // CERTFERRY_SECRET_PREFIX, default "certferry/"
	Document        string // CERTFERRY_DOCUMENT
	TopicARN        string // CERTFERRY_TOPIC_ARN
	KMSKeyID        string // CERTFERRY_KMS_KEY_ID (empty: aws/secretsmanager)
	RenewBeforeDays int    // CERTFERRY_RENEW_BEFORE_DAYS, default 30
	MaxConcurrency  string // CERTFERRY_MAX_CONCURRENCY, default "25%"
	MaxErrors       string // CERTFERRY_MAX_ERRORS, default "25%"
	NotifySuccess   bool   // CERTFERRY_NOTIFY_SUCCESS: alert on fully successful deployments too
	// DeployRetentionDays: CERTFERRY_DEPLOY_RETENTION_DAYS, default 90; a
	// finished deployment's record expires this long after it finished.
	DeployRetentionDays int
}

// Env variable names.
const (
	EnvTable           = "CERTFERRY_TABLE"
	EnvSecretPrefix    = "CERTFERRY_SECRET_PREFIX"
	EnvDocument        = "CERTFERRY_DOCUMENT"
	EnvTopicARN        = "CERTFERRY_TOPIC_ARN"
	EnvKMSKeyID        = "CERTFERRY_KMS_KEY_ID"
	EnvRenewBeforeDays = "CERTFERRY_RENEW_BEFORE_DAYS"
	EnvMaxConcurrency  = "CERTFERRY_MAX_CONCURRENCY"
	EnvMaxErrors       = "CERTFERRY_MAX_ERRORS"
	EnvNotifySuccess   = "CERTFERRY_NOTIFY_SUCCESS"
	EnvDeployRetention = "CERTFERRY_DEPLOY_RETENTION_DAYS"
)

// prefixPattern keeps secret names within the SSM document's SecretId
// allowedPattern.
var prefixPattern = regexp.MustCompile(`^([A-Za-z0-9_+=@][A-Za-z0-9_+=@-]*/){1,4}$`)

// Load reads the environment through lookup. Every name in required must be
// set and non-empty; all missing ones are reported together.
func Load(lookup func(string) (string, bool), required ...string) (Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
		return def
	}
	var errs []error
	for _, k := range required {
		if get(k, "") == "" {
			errs = append(errs, fmt.Errorf("environment variable %s is required", k))
		}
	}
	c := Config{
		Table:          get(EnvTable, ""),
		SecretPrefix:   get(EnvSecretPrefix, "certferry/"),
		Document:       get(EnvDocument, ""),
		TopicARN:       get(EnvTopicARN, ""),
		KMSKeyID:       get(EnvKMSKeyID, ""),
		MaxConcurrency: get(EnvMaxConcurrency, ""),
		MaxErrors:      get(EnvMaxErrors, ""),
	}
	if !prefixPattern.MatchString(c.SecretPrefix) {
		errs = append(errs, fmt.Errorf("environment variable %s must be 1 to 4 path segments of letters, digits and _+=@- (not starting with -), each ending in '/' (e.g. certferry/)", EnvSecretPrefix))
	}
	days, err := strconv.Atoi(get(EnvRenewBeforeDays, "30"))
	if err != nil || days < 1 || days > 365 {
		errs = append(errs, fmt.Errorf("environment variable %s must be a whole number of days from 1 to 365", EnvRenewBeforeDays))
	}
	c.RenewBeforeDays = days
	keep, err := strconv.Atoi(get(EnvDeployRetention, "90"))
	if err != nil || keep < 1 || keep > 3650 {
		errs = append(errs, fmt.Errorf("environment variable %s must be a whole number of days from 1 to 3650", EnvDeployRetention))
	}
	c.DeployRetentionDays = keep
	switch get(EnvNotifySuccess, "false") {
	case "true":
		c.NotifySuccess = true
	case "false":
	default:
		errs = append(errs, fmt.Errorf("environment variable %s must be true or false", EnvNotifySuccess))
	}
	return c, errors.Join(errs...)
}
