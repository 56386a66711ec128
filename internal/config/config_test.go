package config

import (
	"strings"
	"testing"
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
			want: Config{Table: "t", Document: "d", SecretPrefix: "certferry/", RenewBeforeDays: 30, DeployRetentionDays: 90},
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
			want: Config{Table: "t", Document: "d", SecretPrefix: "certferry/", RenewBeforeDays: 30, DeployRetentionDays: 7},
		},
		{
			name: "team prefix and notify success",
			env:  map[string]string{EnvTable: "t", EnvDocument: "d", EnvSecretPrefix: "team-a/certferry/", EnvNotifySuccess: "true"},
			want: Config{Table: "t", Document: "d", SecretPrefix: "team-a/certferry/", RenewBeforeDays: 30, DeployRetentionDays: 90, NotifySuccess: true},
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
			if err != nil || got != tc.want {
				t.Fatalf("Load() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
