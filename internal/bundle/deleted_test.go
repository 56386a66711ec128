package bundle

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fakeSM answers as Secrets Manager does for secrets scheduled for
// deletion ("DeleteSecret", Secrets Manager API Reference: "You cannot
// access the encrypted secret information in any secret that is scheduled
// for deletion"; GetSecretValue and PutSecretValue answer
// InvalidRequestException, DescribeSecret shows DeletedDate).
type fakeSM struct {
	secretsAPI
	deleted map[string]time.Time // secret id -> DeletedDate
	exists  map[string]bool
}

func (f *fakeSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	id := aws.ToString(in.SecretId)
	if d, ok := f.deleted[id]; ok {
		return &secretsmanager.DescribeSecretOutput{Name: in.SecretId, DeletedDate: aws.Time(d)}, nil
	}
	if f.exists[id] {
		return &secretsmanager.DescribeSecretOutput{Name: in.SecretId}, nil
	}
	return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	if _, ok := f.deleted[id]; ok {
		return nil, &smtypes.InvalidRequestException{Message: aws.String("You can't perform this operation on the secret because it was marked for deletion.")}
	}
	return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func TestScheduledForDeletion(t *testing.T) {
	when := time.Date(2026, 12, 30, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deleted  []string
		exists   []string
		keystore bool
		want     string // "" no error; else a part of the message
	}{
		{name: "no secret yet", want: ""},
		{name: "live secret", exists: []string{"certferry/shop"}, want: ""},
		{name: "bundle secret scheduled", deleted: []string{"certferry/shop"}, want: "secret certferry/shop is scheduled for deletion"},
		{name: "keystore scheduled, keystore used", exists: []string{"certferry/shop"}, deleted: []string{"certferry/shop/keystore"}, keystore: true, want: "certferry/shop/keystore"},
		{name: "keystore scheduled, keystore unused", exists: []string{"certferry/shop"}, deleted: []string{"certferry/shop/keystore"}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSM{deleted: map[string]time.Time{}, exists: map[string]bool{}}
			for _, d := range tc.deleted {
				f.deleted[d] = when
			}
			for _, e := range tc.exists {
				f.exists[e] = true
			}
			err := NewStore(f, "certferry/", "").CheckNotScheduledForDeletion(context.Background(), "shop", tc.keystore)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, ErrScheduledForDeletion) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "restore-secret") {
				t.Fatalf("got %v, want ErrScheduledForDeletion naming %q and how to restore", err, tc.want)
			}
		})
	}
}

// Current on a secret scheduled for deletion says so (it never heals by
// retrying) instead of a bare dependency failure.
func TestCurrentOfSecretScheduledForDeletion(t *testing.T) {
	f := &fakeSM{deleted: map[string]time.Time{"certferry/shop": time.Now()}}
	_, _, err := NewStore(f, "certferry/", "").Current(context.Background(), "shop")
	if !errors.Is(err, ErrScheduledForDeletion) {
		t.Fatalf("got %v, want ErrScheduledForDeletion", err)
	}
}
