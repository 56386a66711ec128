//go:build integration

package bundle

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// On moto: once DeleteSecret scheduled a name's secret (DELETE
// /certificates/{name}?deleteSecret=true), reading it and the pre-onboard
// check both answer ErrScheduledForDeletion, and RestoreSecret makes the
// name usable again.
func TestScheduledForDeletionOnMoto(t *testing.T) {
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(motoConfig(t))
	s := NewStore(sm, "certferry/", "")
	if _, err := s.Put(ctx, "shop", &Bundle{CertificateARN: "arn:x", Serial: "0a"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckNotScheduledForDeletion(ctx, "shop", true); err != nil {
		t.Fatalf("live secret: %v", err)
	}
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("certferry/shop"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckNotScheduledForDeletion(ctx, "shop", false); !errors.Is(err, ErrScheduledForDeletion) {
		t.Fatalf("check after DeleteSecret: %v, want ErrScheduledForDeletion", err)
	}
	if _, _, err := s.Current(ctx, "shop"); !errors.Is(err, ErrScheduledForDeletion) {
		t.Fatalf("Current after DeleteSecret: %v, want ErrScheduledForDeletion", err)
	}
	if _, err := sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("certferry/shop")}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckNotScheduledForDeletion(ctx, "shop", false); err != nil {
		t.Fatalf("after RestoreSecret: %v", err)
	}
	if b, _, err := s.Current(ctx, "shop"); err != nil || b == nil || b.Serial != "0a" {
		t.Fatalf("Current after RestoreSecret: %v %v", b, err)
	}
}
