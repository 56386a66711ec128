//go:build integration

package bundle

// Integration tests against moto_server (started by TestMain; they fail,
// never skip, without it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit"
)

var moto *motoserver.Server

func TestMain(m *testing.M) {
	rig, err := testkit.StartRig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "bundle integration tests need moto_server:", err)
		os.Exit(1)
	}
	moto = rig.Moto
	os.Exit(rig.Finish(m.Run()))
}

func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	if err := moto.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithBaseEndpoint(moto.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// countingAPI counts the calls that create or change secrets.
type countingAPI struct {
	*secretsmanager.Client
	mu      sync.Mutex
	creates int
	randoms int
}

func (c *countingAPI) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	c.mu.Lock()
	c.creates++
	c.mu.Unlock()
	return c.Client.CreateSecret(ctx, in, o...)
}

func (c *countingAPI) GetRandomPassword(ctx context.Context, in *secretsmanager.GetRandomPasswordInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error) {
	c.mu.Lock()
	c.randoms++
	c.mu.Unlock()
	return c.Client.GetRandomPassword(ctx, in, o...)
}

func TestEnsureKeystorePassword(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t)
	key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	sm := secretsmanager.NewFromConfig(cfg)
	api := &countingAPI{Client: sm}
	s := NewStore(api, "certferry/", keyARN)

	if got := s.KeystoreSecretName("shop-web"); got != "certferry/shop-web/keystore" {
		t.Fatalf("KeystoreSecretName = %q", got)
	}
	if err := s.EnsureKeystorePassword(ctx, "shop-web"); err != nil {
		t.Fatal(err)
	}
	read := func() (string, *secretsmanager.DescribeSecretOutput) {
		t.Helper()
		v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("certferry/shop-web/keystore")})
		if err != nil {
			t.Fatal(err)
		}
		var ks struct {
			Password string `json:"password"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(v.SecretString)), &ks); err != nil {
			t.Fatalf("keystore secret is not {\"password\": ...}: %v", err)
		}
		d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("certferry/shop-web/keystore")})
		if err != nil {
			t.Fatal(err)
		}
		return ks.Password, d
	}
	pw, d := read()
	if len(pw) != KeystorePasswordLength || strings.ContainsAny(pw, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ") {
		t.Errorf("password of %d characters with punctuation or space: want %d letters and digits", len(pw), KeystorePasswordLength)
	}
	if aws.ToString(d.KmsKeyId) != keyARN {
		t.Errorf("KMS key %q, want %q", aws.ToString(d.KmsKeyId), keyARN)
	}
	tags := map[string]string{}
	for _, tg := range d.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["certferry:name"] != "shop-web" || tags["certferry:purpose"] != "keystore-password" {
		t.Errorf("tags %v", tags)
	}

	// Again (a redeploy, a renewal, a retry): nothing created, password kept.
	for range 3 {
		if err := s.EnsureKeystorePassword(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := read(); again != pw {
		t.Error("the keystore password changed on a later call; servers configured with it would break")
	}
	if api.creates != 1 || api.randoms != 1 {
		t.Errorf("CreateSecret %d times, GetRandomPassword %d times; want 1 and 1", api.creates, api.randoms)
	}

	// Scheduled for deletion: a clear error, nothing recreated.
	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("certferry/shop-web/keystore"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	err = s.EnsureKeystorePassword(ctx, "shop-web")
	if err == nil || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Fatalf("EnsureKeystorePassword on a deleted secret = %v", err)
	}
	if api.creates != 1 {
		t.Error("a secret scheduled for deletion was recreated")
	}
}

// A run that lost the race to create the secret (ResourceExistsException
// from CreateSecret) succeeds and keeps the winner's password.
func TestEnsureKeystorePasswordRace(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t)
	sm := secretsmanager.NewFromConfig(cfg)
	winner := NewStore(sm, "certferry/", "")
	// The loser described the secret before the winner created it.
	loser := NewStore(&staleDescribe{Client: sm}, "certferry/", "")
	if err := winner.EnsureKeystorePassword(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	before, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("certferry/api/keystore")})
	if err != nil {
		t.Fatal(err)
	}
	if err := loser.EnsureKeystorePassword(ctx, "api"); err != nil {
		t.Fatalf("the loser of the race failed: %v", err)
	}
	after, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("certferry/api/keystore")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(after.SecretString) != aws.ToString(before.SecretString) || aws.ToString(after.VersionId) != aws.ToString(before.VersionId) {
		t.Error("the loser of the race changed the secret")
	}
}

// staleDescribe answers DescribeSecret as Secrets Manager did before the
// secret existed.
type staleDescribe struct{ *secretsmanager.Client }

func (s *staleDescribe) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	_, err := s.Client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("certferry/never-created")}, o...)
	if err == nil {
		return nil, errors.New("expected ResourceNotFoundException for a secret never created")
	}
	return nil, err
}
