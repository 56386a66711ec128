package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/certferry/certferry/internal/bundle"
)

// Recovery windows of DeleteSecret ("DeleteSecret", Secrets Manager API
// Reference: RecoveryWindowInDays 7 to 30, default 30).
const (
	DefaultRecoveryDays = 30
	MinRecoveryDays     = 7
	MaxRecoveryDays     = 30
)

type secretDeleter interface {
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

var _ secretDeleter = (*secretsmanager.Client)(nil)

// SecretRemover schedules the deletion of a name's secrets (DELETE
// /certificates/{name}?deleteSecret=true).
type SecretRemover struct {
	api    secretDeleter
	prefix string
}

// NewSecretRemover returns a SecretRemover for secrets under prefix.
func NewSecretRemover(api secretDeleter, prefix string) *SecretRemover {
	return &SecretRemover{api: api, prefix: prefix}
}

// ScheduledSecret is a secret whose deletion is scheduled.
type ScheduledSecret struct {
	Name               string `json:"name"`
	ARN                string `json:"arn,omitempty"`
	DeletionDate       string `json:"deletionDate,omitempty"`
	RecoveryWindowDays int    `json:"recoveryWindowDays,omitempty"`
	// AlreadyScheduled: an earlier request scheduled it (its window runs
	// from then).
	AlreadyScheduled bool `json:"alreadyScheduled,omitempty"`
}

// Remove schedules the deletion of name's bundle secret (<prefix><name>)
// and of its keystore password secret (<prefix><name>/keystore) when
// there is one, with a recovery window of days (RestoreSecret undoes it
// until then). A secret already scheduled counts as scheduled, so a retry
// completes an interrupted removal. It returns the secrets scheduled; none
// when name has no secret.
func (r *SecretRemover) Remove(ctx context.Context, name string, days int) ([]ScheduledSecret, error) {
	if days < MinRecoveryDays || days > MaxRecoveryDays {
		return nil, fmt.Errorf("schedule deletion of %s's secrets: recovery window %d days, want %d to %d", name, days, MinRecoveryDays, MaxRecoveryDays)
	}
	var out []ScheduledSecret
	for _, id := range []string{r.prefix + name, r.prefix + name + bundle.KeystoreSuffix} {
		s, err := r.remove(ctx, id, days)
		if err != nil {
			return out, err
		}
		if s != nil {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (r *SecretRemover) remove(ctx context.Context, id string, days int) (*ScheduledSecret, error) {
	res, err := r.api.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String(id), RecoveryWindowInDays: aws.Int64(int64(days)),
	})
	var nf *smtypes.ResourceNotFoundException
	var inv *smtypes.InvalidRequestException
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case errors.As(err, &inv):
		// Secrets Manager refuses operations on a secret marked for
		// deletion: if DescribeSecret shows a DeletedDate, an earlier
		// request scheduled it and there is nothing left to do.
		d, derr := r.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if derr != nil || d.DeletedDate == nil {
			return nil, fmt.Errorf("schedule deletion of secret %s: %w", id, err)
		}
		return &ScheduledSecret{Name: id, ARN: aws.ToString(d.ARN), AlreadyScheduled: true}, nil
	case err != nil:
		return nil, fmt.Errorf("schedule deletion of secret %s: %w", id, err)
	}
	s := &ScheduledSecret{Name: id, ARN: aws.ToString(res.ARN), RecoveryWindowDays: days}
	if res.DeletionDate != nil {
		s.DeletionDate = res.DeletionDate.UTC().Format(time.RFC3339)
	}
	return s, nil
}
