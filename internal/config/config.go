// Package config turns the environment template.yaml sets into plain values.
// Only main packages call it, with os.LookupEnv.
package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/certferry/certferry/internal/spec"
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

	// The sweep's fan-out: CERTFERRY_SWEEP_QUEUE_URL (the queue the
	// scheduled sweep enqueues one message per name on; required by the
	// sweeper function), CERTFERRY_SWEEP_MAX_RECEIVE_COUNT (the queue's
	// redrive maxReceiveCount; unset 0: the sweeper's default 3) and
	// CERTFERRY_SWEEP_CONCURRENCY (the event source mapping's
	// MaximumConcurrency; unset 0: the default 2; each
	// worker paces its names to its share of ExportCertificate's rate).
	SweepQueueURL        string
	SweepMaxReceiveCount int
	SweepConcurrency     int

	// AllowedPrefixes: CERTFERRY_ALLOWED_PREFIXES, ':'-separated directories
	// every target path must lie under (default spec.DefaultAllowedPrefixes).
	AllowedPrefixes []string
	// EventBus: CERTFERRY_EVENT_BUS, where certferry's own events go (an
	// event bus name or ARN); empty: the account's default bus.
	EventBus string
	// Installer: where the stack published the node installer
	// (CERTFERRY_INSTALLER_*); zero when not configured.
	Installer Installer
	// ProbeFunction: CERTFERRY_PROBE_FUNCTION, the probe function the
	// tracker and the sweeper invoke; empty: probes run in-process.
	ProbeFunction string
	// Schedule: where timed rollout steps go (EventBridge Scheduler);
	// zero when not configured.
	Schedule Schedule
}

// Schedule locates the stack's EventBridge Scheduler setup for timed
// rollout steps (internal/schedule).
type Schedule struct {
	Group   string // CERTFERRY_SCHEDULE_GROUP: the stack's schedule group
	RoleARN string // CERTFERRY_SCHEDULER_ROLE_ARN: the role Scheduler assumes to invoke the target
	// TargetARN: CERTFERRY_STEP_TARGET_ARN, the renewal function's ARN.
	// The renewal function cannot name its own ARN in its environment (a
	// circular reference in CloudFormation), so the template gives it
	// "self" and Load derives the ARN from AWS_LAMBDA_FUNCTION_NAME and
	// AWS_REGION (set by Lambda) and the role ARN's partition and account.
	TargetARN string
	// DeadLetterARN: CERTFERRY_STEP_DLQ_ARN, optional SQS queue for steps
	// Scheduler could not deliver.
	DeadLetterARN string
}

// Configured reports whether the schedule settings are set.
func (s Schedule) Configured() bool { return s.Group != "" }

// Installer locates the published node installer binaries; the pipeline
// passes it to every command as the Installer* document parameters.
type Installer struct {
	Bucket             string // CERTFERRY_INSTALLER_BUCKET
	KeyPrefix          string // CERTFERRY_INSTALLER_KEY_PREFIX, default "installer/"
	SHA256LinuxAmd64   string // CERTFERRY_INSTALLER_SHA256_LINUX_AMD64 (lowercase hex)
	SHA256LinuxArm64   string // CERTFERRY_INSTALLER_SHA256_LINUX_ARM64
	SHA256WindowsAmd64 string // CERTFERRY_INSTALLER_SHA256_WINDOWS_AMD64
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
	EnvEventBus        = "CERTFERRY_EVENT_BUS"
	EnvProbeFunction   = "CERTFERRY_PROBE_FUNCTION"

	EnvSweepQueueURL        = "CERTFERRY_SWEEP_QUEUE_URL"
	EnvSweepMaxReceiveCount = "CERTFERRY_SWEEP_MAX_RECEIVE_COUNT"
	EnvSweepConcurrency     = "CERTFERRY_SWEEP_CONCURRENCY"

	EnvAllowedPrefixes             = "CERTFERRY_ALLOWED_PREFIXES"
	EnvInstallerBucket             = "CERTFERRY_INSTALLER_BUCKET"
	EnvInstallerKeyPrefix          = "CERTFERRY_INSTALLER_KEY_PREFIX"
	EnvInstallerSHA256LinuxAmd64   = "CERTFERRY_INSTALLER_SHA256_LINUX_AMD64"
	EnvInstallerSHA256LinuxArm64   = "CERTFERRY_INSTALLER_SHA256_LINUX_ARM64"
	EnvInstallerSHA256WindowsAmd64 = "CERTFERRY_INSTALLER_SHA256_WINDOWS_AMD64"

	EnvScheduleGroup    = "CERTFERRY_SCHEDULE_GROUP"
	EnvSchedulerRoleARN = "CERTFERRY_SCHEDULER_ROLE_ARN"
	EnvStepTargetARN    = "CERTFERRY_STEP_TARGET_ARN"
	EnvStepDLQARN       = "CERTFERRY_STEP_DLQ_ARN"
	// StepTargetSelf as CERTFERRY_STEP_TARGET_ARN: this function is the
	// target (the renewal function; see Schedule.TargetARN).
	StepTargetSelf = "self"
)

// ScheduleSettings are the settings that must be given together (the
// dead-letter queue is optional).
var ScheduleSettings = []string{EnvScheduleGroup, EnvSchedulerRoleARN, EnvStepTargetARN}

// Grammars of the schedule settings: "CreateSchedule" and "Target"
// (EventBridge Scheduler API Reference) for the group, role and queue; a
// Lambda function ARN (unqualified) for the target.
var (
	scheduleGroupPattern = regexp.MustCompile(`^[0-9a-zA-Z-_.]{1,64}$`)
	roleARNPattern       = regexp.MustCompile(`^arn:(aws(-[a-z]+)?):iam::(\d{12}):role\/[\w+=,.@\/-]+$`)
	functionARNPattern   = regexp.MustCompile(`^arn:aws(-[a-z]+)?:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}$`)
	functionNamePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	regionPattern        = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	queueARNPattern      = regexp.MustCompile(`^arn:aws(-[a-z]+)?:sqs:[a-z0-9\-]+:\d{12}:[a-zA-Z0-9\-_]+$`)
)

// InstallerSettings are the CERTFERRY_INSTALLER_* settings that must be
// given together (the key prefix has a default).
var InstallerSettings = []string{EnvInstallerBucket, EnvInstallerSHA256LinuxAmd64, EnvInstallerSHA256LinuxArm64, EnvInstallerSHA256WindowsAmd64}

// DefaultInstallerKeyPrefix is where the stack publishes the installer.
const DefaultInstallerKeyPrefix = "installer/"

// bucketPattern is S3's bucket naming rule (general purpose buckets): 3 to
// 63 lower-case letters, digits, '.' and '-', starting and ending with a
// letter or digit.
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// eventBusPattern is PutEventsRequestEntry.EventBusName's (botocore's
// events model, NonPartnerEventBusNameOrArn; a bus name has 1 to 256
// characters, "CreateEventBus").
var eventBusPattern = regexp.MustCompile(`^(arn:aws[\w-]*:events:[a-z]+-[a-z]+-[\w-]+:[0-9]{12}:event-bus/)?[.\-_A-Za-z0-9]{1,256}$`)

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
		EventBus:       get(EnvEventBus, ""),
		ProbeFunction:  get(EnvProbeFunction, ""),
	}
	if c.EventBus != "" && !eventBusPattern.MatchString(c.EventBus) {
		errs = append(errs, fmt.Errorf("environment variable %s must be an event bus name or ARN", EnvEventBus))
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
	c.SweepQueueURL = get(EnvSweepQueueURL, "")
	// Unset stays 0: the sweeper's defaults (3 and 2). SQS RedrivePolicy
	// maxReceiveCount is 1 to 1000 (Amazon SQS API Reference,
	// SetQueueAttributes "RedrivePolicy"); ScalingConfig MaximumConcurrency
	// 2 to 1000 (AWS::Lambda::EventSourceMapping ScalingConfig).
	if v := get(EnvSweepMaxReceiveCount, ""); v != "" {
		if c.SweepMaxReceiveCount, err = strconv.Atoi(v); err != nil || c.SweepMaxReceiveCount < 1 || c.SweepMaxReceiveCount > 1000 {
			errs = append(errs, fmt.Errorf("environment variable %s must be a whole number from 1 to 1000", EnvSweepMaxReceiveCount))
		}
	}
	if v := get(EnvSweepConcurrency, ""); v != "" {
		if c.SweepConcurrency, err = strconv.Atoi(v); err != nil || c.SweepConcurrency < 2 || c.SweepConcurrency > 1000 {
			errs = append(errs, fmt.Errorf("environment variable %s must be a whole number from 2 to 1000", EnvSweepConcurrency))
		}
	}
	prefixes, err := spec.ParsePrefixes(get(EnvAllowedPrefixes, strings.Join(spec.DefaultAllowedPrefixes, ":")))
	if err != nil {
		errs = append(errs, fmt.Errorf("environment variable %s %w", EnvAllowedPrefixes, err))
	}
	c.AllowedPrefixes = prefixes
	c.Installer, err = loadInstaller(get)
	if err != nil {
		errs = append(errs, err)
	}
	c.Schedule, err = loadSchedule(get)
	if err != nil {
		errs = append(errs, err)
	}
	switch get(EnvNotifySuccess, "false") {
	case "true":
		c.NotifySuccess = true
	case "false":
	default:
		errs = append(errs, fmt.Errorf("environment variable %s must be true or false", EnvNotifySuccess))
	}
	return c, errors.Join(errs...)
}

// loadInstaller reads the CERTFERRY_INSTALLER_* settings: none (a rig
// without a published installer) or all of them, each well formed.
func loadInstaller(get func(k, def string) string) (Installer, error) {
	in := Installer{
		Bucket:             get(EnvInstallerBucket, ""),
		KeyPrefix:          get(EnvInstallerKeyPrefix, DefaultInstallerKeyPrefix),
		SHA256LinuxAmd64:   get(EnvInstallerSHA256LinuxAmd64, ""),
		SHA256LinuxArm64:   get(EnvInstallerSHA256LinuxArm64, ""),
		SHA256WindowsAmd64: get(EnvInstallerSHA256WindowsAmd64, ""),
	}
	_, err := together(get, InstallerSettings, "installer")
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if in.Bucket != "" && !bucketPattern.MatchString(in.Bucket) {
		errs = append(errs, fmt.Errorf("environment variable %s must be an S3 bucket name", EnvInstallerBucket))
	}
	if !spec.KeyPrefixPattern.MatchString(in.KeyPrefix) {
		errs = append(errs, fmt.Errorf("environment variable %s must be 1 to 4 key segments of letters, digits and . _ - (not starting with '.'), each ending in '/' (e.g. %s)", EnvInstallerKeyPrefix, DefaultInstallerKeyPrefix))
	}
	for _, h := range [][2]string{
		{EnvInstallerSHA256LinuxAmd64, in.SHA256LinuxAmd64},
		{EnvInstallerSHA256LinuxArm64, in.SHA256LinuxArm64},
		{EnvInstallerSHA256WindowsAmd64, in.SHA256WindowsAmd64},
	} {
		if h[1] != "" && !spec.SHA256Pattern.MatchString(h[1]) {
			errs = append(errs, fmt.Errorf("environment variable %s must be a lowercase hex SHA-256 (64 characters)", h[0]))
		}
	}
	return in, errors.Join(errs...)
}

// together checks that the settings keys (what's) are all set or none:
// anySet reports whether any is, the error names the set and the missing
// ones.
func together(get func(k, def string) string, keys []string, what string) (anySet bool, err error) {
	var set, missing []string
	for _, k := range keys {
		if get(k, "") == "" {
			missing = append(missing, k)
		} else {
			set = append(set, k)
		}
	}
	if len(set) > 0 && len(missing) > 0 {
		err = fmt.Errorf("environment variables %s are set but %s are not: the %s settings go together", strings.Join(set, ", "), strings.Join(missing, ", "), what)
	}
	return len(set) > 0, err
}

// loadSchedule reads the schedule settings: none (no timed steps) or all,
// each well formed; CERTFERRY_STEP_TARGET_ARN=self is this function's ARN.
func loadSchedule(get func(k, def string) string) (Schedule, error) {
	sc := Schedule{
		Group: get(EnvScheduleGroup, ""), RoleARN: get(EnvSchedulerRoleARN, ""),
		TargetARN: get(EnvStepTargetARN, ""), DeadLetterARN: get(EnvStepDLQARN, ""),
	}
	anySet, err := together(get, ScheduleSettings, "schedule")
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if !anySet && sc.DeadLetterARN != "" {
		errs = append(errs, fmt.Errorf("environment variable %s is set without %s", EnvStepDLQARN, strings.Join(ScheduleSettings, ", ")))
	}
	if sc.Group != "" && !scheduleGroupPattern.MatchString(sc.Group) {
		errs = append(errs, fmt.Errorf("environment variable %s must be a schedule group name (1 to 64 letters, digits and -_.)", EnvScheduleGroup))
	}
	role := roleARNPattern.FindStringSubmatch(sc.RoleARN)
	if sc.RoleARN != "" && role == nil {
		errs = append(errs, fmt.Errorf("environment variable %s must be an IAM role ARN", EnvSchedulerRoleARN))
	}
	switch {
	case sc.TargetARN == StepTargetSelf:
		fn, region := get("AWS_LAMBDA_FUNCTION_NAME", ""), get("AWS_REGION", "")
		if !functionNamePattern.MatchString(fn) || !regionPattern.MatchString(region) || role == nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%s needs AWS_LAMBDA_FUNCTION_NAME and AWS_REGION (set by Lambda) and a valid %s", EnvStepTargetARN, StepTargetSelf, EnvSchedulerRoleARN))
			break
		}
		sc.TargetARN = fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", role[1], region, role[3], fn)
	case sc.TargetARN != "" && !functionARNPattern.MatchString(sc.TargetARN):
		errs = append(errs, fmt.Errorf("environment variable %s must be a Lambda function ARN (unqualified) or %q", EnvStepTargetARN, StepTargetSelf))
	}
	if sc.DeadLetterARN != "" && !queueARNPattern.MatchString(sc.DeadLetterARN) {
		errs = append(errs, fmt.Errorf("environment variable %s must be an SQS queue ARN", EnvStepDLQARN))
	}
	return sc, errors.Join(errs...)
}
