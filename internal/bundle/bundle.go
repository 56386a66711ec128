// Package bundle stores exported certificates as versions of one Secrets
// Manager secret per name (certferry/<name>), in the JSON layout nodes read.
package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Bundle is the SecretString of a certferry secret version. It carries the
// encrypted key, the PFX and the passphrase, so it redacts itself in logs.
type Bundle struct {
	CertificateARN   string `json:"certificateArn"`
	Serial           string `json:"serial"`
	NotAfter         string `json:"notAfter"`
	Fingerprint      string `json:"fingerprintSha256"`
	Certificate      string `json:"certificate"`
	CertificateChain string `json:"certificateChain"`
	PrivateKey       string `json:"privateKey"`
	PKCS12           string `json:"pkcs12"`
	Passphrase       string `json:"passphrase"`
	ExportedAt       string `json:"exportedAt"`
}

// LogValue shows only the public identifiers.
func (b Bundle) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("certificateArn", b.CertificateARN),
		slog.String("serial", b.Serial),
		slog.String("fingerprintSha256", b.Fingerprint),
	)
}

// String keeps fmt's %v and %s from printing secrets.
func (b Bundle) String() string {
	return fmt.Sprintf("bundle{serial=%s fingerprint=%s}", b.Serial, b.Fingerprint)
}

// GoString does the same for %#v.
func (b Bundle) GoString() string { return b.String() }

// Version identifies a stored bundle version.
type Version struct {
	SecretARN string
	VersionID string
}

type secretsAPI interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	GetRandomPassword(ctx context.Context, in *secretsmanager.GetRandomPasswordInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

var _ secretsAPI = (*secretsmanager.Client)(nil)

// Store reads and writes bundles.
type Store struct {
	api      secretsAPI
	prefix   string
	kmsKeyID string
}

// NewStore returns a Store writing secrets named prefix+name, encrypted with
// kmsKeyID (empty: the account's aws/secretsmanager key).
func NewStore(api secretsAPI, prefix, kmsKeyID string) *Store {
	return &Store{api: api, prefix: prefix, kmsKeyID: kmsKeyID}
}

// SecretName is the secret that holds name's bundle.
func (s *Store) SecretName(name string) string { return s.prefix + name }

// PassphraseLength is the length of each export passphrase. ACM refuses
// '#', '$' and '%', so punctuation is excluded altogether.
const PassphraseLength = 32

// NewPassphrase asks Secrets Manager for a fresh random passphrase.
func (s *Store) NewPassphrase(ctx context.Context) (string, error) {
	out, err := s.api.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{
		PasswordLength:          aws.Int64(PassphraseLength),
		ExcludePunctuation:      aws.Bool(true),
		IncludeSpace:            aws.Bool(false),
		RequireEachIncludedType: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("get random passphrase: %w", err)
	}
	pw := aws.ToString(out.RandomPassword)
	if len(pw) < PassphraseLength {
		return "", fmt.Errorf("get random passphrase: got %d characters, want %d", len(pw), PassphraseLength)
	}
	return pw, nil
}

// ErrScheduledForDeletion: a secret of the name is scheduled for deletion
// (DELETE /certificates/{name}?deleteSecret=true, or by hand). Secrets
// Manager refuses to read or write it until RestoreSecret ("DeleteSecret",
// Secrets Manager API Reference: "You cannot access the encrypted secret
// information in any secret that is scheduled for deletion"), and
// CreateSecret on its name fails while it waits, so retrying never heals it.
var ErrScheduledForDeletion = errors.New("scheduled for deletion")

// scheduledError says which secret waits for deletion and how to bring it
// back. (DescribeSecret's DeletedDate is documented as "the date the secret
// is scheduled for deletion"; emulators differ, so no date is quoted.)
func scheduledError(id string) error {
	return fmt.Errorf("secret %s is %w: restore it (aws secretsmanager restore-secret --secret-id %s) to use this name again, or choose another name",
		id, ErrScheduledForDeletion, id)
}

// CheckNotScheduledForDeletion answers ErrScheduledForDeletion when name's
// bundle secret, or with keystore its keystore password secret, is
// scheduled for deletion. A secret that does not exist is fine.
func (s *Store) CheckNotScheduledForDeletion(ctx context.Context, name string, keystore bool) error {
	ids := []string{s.SecretName(name)}
	if keystore {
		ids = append(ids, s.KeystoreSecretName(name))
	}
	for _, id := range ids {
		d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		var nf *smtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			continue
		case err != nil:
			return fmt.Errorf("describe secret %s: %w", id, err)
		case d.DeletedDate != nil:
			return scheduledError(id)
		}
	}
	return nil
}

// Current returns the AWSCURRENT bundle of name, or nil when the secret does
// not exist yet (or has no value).
func (s *Store) Current(ctx context.Context, name string) (*Bundle, Version, error) {
	id := s.SecretName(name)
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil, Version{}, nil
		}
		var inv *smtypes.InvalidRequestException
		if errors.As(err, &inv) {
			if d, derr := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)}); derr == nil && d.DeletedDate != nil {
				return nil, Version{}, scheduledError(id)
			}
		}
		return nil, Version{}, fmt.Errorf("read secret %s: %w", id, err)
	}
	var b Bundle
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &b); err != nil {
		// Never echo the secret string; it holds key material.
		return nil, Version{}, fmt.Errorf("read secret %s: value is not a certferry bundle", id)
	}
	return &b, Version{SecretARN: aws.ToString(out.ARN), VersionID: aws.ToString(out.VersionId)}, nil
}

// Put stores b as the new AWSCURRENT version of name's secret, creating the
// secret (KMS key, tags) on first use. The previous version becomes
// AWSPREVIOUS, which nodes can roll back to. token, when not empty, is the
// version's ClientRequestToken: a retried Put with the same token and value
// does not add a version.
func (s *Store) Put(ctx context.Context, name string, b *Bundle, token string) (Version, error) {
	raw, err := json.Marshal(b)
	if err != nil {
		return Version{}, fmt.Errorf("encode bundle for %s: %w", name, err)
	}
	id := s.SecretName(name)
	var tok *string
	if token != "" {
		tok = aws.String(token)
	}
	put, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(id),
		SecretString:       aws.String(string(raw)),
		ClientRequestToken: tok,
	})
	if err == nil {
		return Version{SecretARN: aws.ToString(put.ARN), VersionID: aws.ToString(put.VersionId)}, nil
	}
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return Version{}, fmt.Errorf("put secret value %s: %w", id, err)
	}
	in := &secretsmanager.CreateSecretInput{
		Name:               aws.String(id),
		Description:        aws.String("certferry certificate bundle for " + name),
		SecretString:       aws.String(string(raw)),
		ClientRequestToken: tok,
		Tags: []smtypes.Tag{
			{Key: aws.String("certferry:name"), Value: aws.String(name)},
			{Key: aws.String("certferry:certificateArn"), Value: aws.String(b.CertificateARN)},
		},
	}
	if s.kmsKeyID != "" {
		in.KmsKeyId = aws.String(s.kmsKeyID)
	}
	created, err := s.api.CreateSecret(ctx, in)
	if err != nil {
		var exists *smtypes.ResourceExistsException
		if errors.As(err, &exists) {
			// Created concurrently between our two calls: write the version.
			put, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(id), SecretString: aws.String(string(raw)), ClientRequestToken: tok,
			})
			if err != nil {
				return Version{}, fmt.Errorf("put secret value %s: %w", id, err)
			}
			return Version{SecretARN: aws.ToString(put.ARN), VersionID: aws.ToString(put.VersionId)}, nil
		}
		return Version{}, fmt.Errorf("create secret %s: %w", id, err)
	}
	return Version{SecretARN: aws.ToString(created.ARN), VersionID: aws.ToString(created.VersionId)}, nil
}

// KeystoreSuffix names a name's keystore password secret:
// <prefix><name>/keystore.
const KeystoreSuffix = "/keystore"

// KeystorePasswordLength is the length of a keystore password. Without
// punctuation, so it can stand in a Java server's XML or properties file
// as it is.
const KeystorePasswordLength = 32

// KeystoreSecretName is the secret holding name's keystore password.
func (s *Store) KeystoreSecretName(name string) string { return s.SecretName(name) + KeystoreSuffix }

// keystoreSecret is the SecretString of a keystore password secret.
type keystoreSecret struct {
	Password string `json:"password"`
}

// EnsureKeystorePassword makes sure name's keystore password secret exists
// (pkcs12 and jks formats): created once with a random password, the same
// KMS key and tags as the bundle secret, and never rotated or rewritten by
// certferry, since a Java server's configuration holds the password. A
// secret created concurrently (ResourceExistsException) is fine. The
// password is never returned or logged.
func (s *Store) EnsureKeystorePassword(ctx context.Context, name string) error {
	id := s.KeystoreSecretName(name)
	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err == nil {
		if d.DeletedDate != nil {
			return fmt.Errorf("keystore password secret %s is %w: restore it (aws secretsmanager restore-secret --secret-id %s) so nodes keep the password their servers are configured with", id, ErrScheduledForDeletion, id)
		}
		return nil
	}
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return fmt.Errorf("describe secret %s: %w", id, err)
	}
	out, err := s.api.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{
		PasswordLength:          aws.Int64(KeystorePasswordLength),
		ExcludePunctuation:      aws.Bool(true),
		IncludeSpace:            aws.Bool(false),
		RequireEachIncludedType: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("get random keystore password for %s: %w", name, err)
	}
	pw := aws.ToString(out.RandomPassword)
	if len(pw) < KeystorePasswordLength {
		return fmt.Errorf("get random keystore password for %s: got %d characters, want %d", name, len(pw), KeystorePasswordLength)
	}
	raw, err := json.Marshal(keystoreSecret{Password: pw})
	if err != nil {
		return fmt.Errorf("encode keystore password for %s: %w", name, err)
	}
	in := &secretsmanager.CreateSecretInput{
		Name:         aws.String(id),
		Description:  aws.String("certferry keystore password for " + name + " (pkcs12/jks; created once, never rotated by certferry)"),
		SecretString: aws.String(string(raw)),
		Tags: []smtypes.Tag{
			{Key: aws.String("certferry:name"), Value: aws.String(name)},
			{Key: aws.String("certferry:purpose"), Value: aws.String("keystore-password")},
		},
	}
	if s.kmsKeyID != "" {
		in.KmsKeyId = aws.String(s.kmsKeyID)
	}
	if _, err := s.api.CreateSecret(ctx, in); err != nil {
		var exists *smtypes.ResourceExistsException
		if errors.As(err, &exists) {
			return nil // created by a concurrent run: keep theirs
		}
		return fmt.Errorf("create secret %s: %w", id, err)
	}
	return nil
}
