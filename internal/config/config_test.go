package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/spec"
)

const (
	hashA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hashB = "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hashC = "2123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr []string
	}{
		{
			name: "defaults",
			env:  map[string]string{EnvTable: "t", EnvDocument: "d"},
			want: Config{Table: "t", Document: "d", SecretPrefix: "certferry/", RenewBeforeDays: 30, DeployRetentionDays: 90,
				AllowedPrefixes: spec.DefaultAllowedPrefixes, Installer: Installer{KeyPrefix: "installer/"}},
		},
		{
			name:    "every missing variable is named",
			env:     map[string]string{},
			wantErr: []string{EnvTable + " is required", EnvDocument + " is required"},
		},
		{
			name:    "bad days and prefix",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvRenewBeforeDays: "soon", EnvSecretPrefix: "../x"},
			wantErr: []string{EnvRenewBeforeDays, EnvSecretPrefix},
		},
		{
			name:    "prefix segment read as an option",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvSecretPrefix: "-rf/"},
			wantErr: []string{EnvSecretPrefix},
		},
		{
			name:    "notify success must be a boolean",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvNotifySuccess: "yes please"},
			wantErr: []string{EnvNotifySuccess},
		},
		{
			name:    "retention must be whole days from 1 to 3650",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvDeployRetention: "0"},
			wantErr: []string{EnvDeployRetention},
		},
		{
			name: "retention",
			env:  map[string]string{EnvTable: "t", EnvDocument: "d", EnvDeployRetention: "7"},
			want: Config{Table: "t", Document: "d", SecretPrefix: "certferry/", RenewBeforeDays: 30, DeployRetentionDays: 7,
				AllowedPrefixes: spec.DefaultAllowedPrefixes, Installer: Installer{KeyPrefix: "installer/"}},
		},
		{
			name: "team prefix and notify success",
			env:  map[string]string{EnvTable: "t", EnvDocument: "d", EnvSecretPrefix: "team-a/certferry/", EnvNotifySuccess: "true"},
			want: Config{Table: "t", Document: "d", SecretPrefix: "team-a/certferry/", RenewBeforeDays: 30, DeployRetentionDays: 90, NotifySuccess: true,
				AllowedPrefixes: spec.DefaultAllowedPrefixes, Installer: Installer{KeyPrefix: "installer/"}},
		},
		{
			name: "installer and allowed prefixes",
			env: map[string]string{EnvTable: "t", EnvDocument: "d", EnvAllowedPrefixes: "/etc/nginx:/data/tls",
				EnvInstallerBucket: "stack-installerbucket-1a2b3c", EnvInstallerKeyPrefix: "nodes/installer/",
				EnvInstallerSHA256LinuxAmd64: hashA, EnvInstallerSHA256LinuxArm64: hashB, EnvInstallerSHA256WindowsAmd64: hashC},
			want: Config{Table: "t", Document: "d", SecretPrefix: "certferry/", RenewBeforeDays: 30, DeployRetentionDays: 90,
				AllowedPrefixes: []string{"/etc/nginx", "/data/tls"},
				Installer: Installer{Bucket: "stack-installerbucket-1a2b3c", KeyPrefix: "nodes/installer/",
					SHA256LinuxAmd64: hashA, SHA256LinuxArm64: hashB, SHA256WindowsAmd64: hashC}},
		},
		{
			name:    "allowed prefixes must be absolute directories",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvAllowedPrefixes: "/etc/ssl:tmp"},
			wantErr: []string{EnvAllowedPrefixes + " must be absolute directories"},
		},
		{
			name:    "allowed prefixes may not be the root",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvAllowedPrefixes: "/"},
			wantErr: []string{EnvAllowedPrefixes},
		},
		{
			name:    "installer settings go together",
			env:     map[string]string{EnvTable: "t", EnvDocument: "d", EnvInstallerBucket: "b-1", EnvInstallerSHA256LinuxAmd64: hashA},
			wantErr: []string{"the installer settings go together", EnvInstallerSHA256LinuxArm64, EnvInstallerSHA256WindowsAmd64},
		},
		{
			name: "installer values well formed",
			env: map[string]string{EnvTable: "t", EnvDocument: "d", EnvInstallerBucket: "Not_A_Bucket", EnvInstallerKeyPrefix: "../x/",
				EnvInstallerSHA256LinuxAmd64: strings.ToUpper(hashA), EnvInstallerSHA256LinuxArm64: hashB, EnvInstallerSHA256WindowsAmd64: "abc"},
			wantErr: []string{EnvInstallerBucket + " must be an S3 bucket name", EnvInstallerKeyPrefix, EnvInstallerSHA256LinuxAmd64, EnvInstallerSHA256WindowsAmd64},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(lookupFrom(tc.env), EnvTable, EnvDocument)
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Load() error = %v, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Load() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// The schedule settings: none, or group + role + target together; the
// renewal function's "self" target is derived from Lambda's environment.
func TestLoadSchedule(t *testing.T) {
	const (
		role   = "arn:aws:iam::123456789012:role/certferry-prod-SchedulerRole-1AbC"
		target = "arn:aws:lambda:eu-central-1:123456789012:function:certferry-prod-RenewalFunction-XyZ"
		dlq    = "arn:aws:sqs:eu-central-1:123456789012:certferry-prod-EventsDLQ-1a2B"
	)
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{EnvTable: "t", EnvDocument: "d"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Schedule
		wantErr []string
	}{
		{name: "not configured", env: base(nil)},
		{name: "all set", env: base(map[string]string{EnvScheduleGroup: "certferry-prod", EnvSchedulerRoleARN: role, EnvStepTargetARN: target, EnvStepDLQARN: dlq}),
			want: Schedule{Group: "certferry-prod", RoleARN: role, TargetARN: target, DeadLetterARN: dlq}},
		{name: "renewal function targets itself", env: base(map[string]string{EnvScheduleGroup: "certferry-prod", EnvSchedulerRoleARN: role, EnvStepTargetARN: "self",
			"AWS_LAMBDA_FUNCTION_NAME": "certferry-prod-RenewalFunction-XyZ", "AWS_REGION": "eu-central-1"}),
			want: Schedule{Group: "certferry-prod", RoleARN: role, TargetARN: target}},
		{name: "self in another partition", env: base(map[string]string{EnvScheduleGroup: "g", EnvSchedulerRoleARN: "arn:aws-cn:iam::123456789012:role/r", EnvStepTargetARN: "self",
			"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_REGION": "cn-north-1"}),
			want: Schedule{Group: "g", RoleARN: "arn:aws-cn:iam::123456789012:role/r", TargetARN: "arn:aws-cn:lambda:cn-north-1:123456789012:function:fn"}},
		{name: "self outside Lambda", env: base(map[string]string{EnvScheduleGroup: "g", EnvSchedulerRoleARN: role, EnvStepTargetARN: "self"}),
			wantErr: []string{EnvStepTargetARN + "=self needs AWS_LAMBDA_FUNCTION_NAME"}},
		{name: "settings go together", env: base(map[string]string{EnvScheduleGroup: "g"}),
			wantErr: []string{"the schedule settings go together", EnvSchedulerRoleARN, EnvStepTargetARN}},
		{name: "queue alone", env: base(map[string]string{EnvStepDLQARN: dlq}), wantErr: []string{EnvStepDLQARN + " is set without"}},
		{name: "values well formed", env: base(map[string]string{EnvScheduleGroup: "bad group", EnvSchedulerRoleARN: "arn:aws:iam::123:user/x",
			EnvStepTargetARN: "arn:aws:lambda:us-east-1:123456789012:function:f:live", EnvStepDLQARN: "arn:aws:sns:us-east-1:123456789012:t"}),
			wantErr: []string{EnvScheduleGroup + " must be", EnvSchedulerRoleARN + " must be", EnvStepTargetARN + " must be", EnvStepDLQARN + " must be"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(lookupFrom(tc.env), EnvTable, EnvDocument)
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Load() error = %v, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil || got.Schedule != tc.want || got.Schedule.Configured() != (tc.want.Group != "") {
				t.Fatalf("Load() = %+v, %v; want %+v", got.Schedule, err, tc.want)
			}
		})
	}
}
