package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

func TestCheckInstanceIDs(t *testing.T) {
	fifty := make([]string, 51)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("i-%017x", i)
	}
	for _, tc := range []struct {
		name  string
		ids   []string
		field string
	}{
		{"one", []string{"i-0123456789abcdef0"}, ""},
		{"hybrid and short", []string{"mi-0123456789abcdef0", "i-01234567"}, ""},
		{"fifty", fifty[:50], ""},
		{"none", nil, "instanceIds"},
		{"fifty-one", fifty, "instanceIds"},
		{"upper case", []string{"i-0123456789ABCDEF0"}, "instanceIds[0]"},
		{"injection", []string{"i-0123456789abcdef0", "i-0123456789abcdef0;reboot"}, "instanceIds[1]"},
		{"duplicate", []string{"i-01234567", "i-01234567"}, "instanceIds[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckInstanceIDs(tc.ids)
			var fe *spec.FieldError
			if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Fatalf("CheckInstanceIDs: %v, want field %q", err, tc.field)
			}
		})
	}
}

// A redeploy to some nodes sends one command naming exactly them, forced
// (even when they have the certificate); it is refused while ACM holds a
// serial the name was not deployed at.
func TestRedeployNodes(t *testing.T) {
	r := newRig(t)
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	ids := []string{"i-0123456789abcdef0", "mi-0123456789abcdef1"}
	if _, err := r.p.RedeployNodes(context.Background(), "shop-web", ids, inventory.TriggerAPI); err != nil {
		t.Fatal(err)
	}
	if len(r.fleet.sent) != 2 || !slices.Equal(r.fleet.sent[1].Only, ids) || r.acm.exports != 1 || r.inv.commits != 2 {
		t.Fatalf("sent %d (only %v), exports %d, commits %d", len(r.fleet.sent), r.fleet.sent[len(r.fleet.sent)-1].Only, r.acm.exports, r.inv.commits)
	}
	if _, err := r.p.RedeployNodes(context.Background(), "shop-web", []string{"i-1"}, inventory.TriggerAPI); err == nil || len(r.fleet.sent) != 2 {
		t.Fatalf("bad id: %v, sent %d", err, len(r.fleet.sent))
	}
	r.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
	r.acm.info.Serial = certs.SerialHex(r.acm.export.Leaf.SerialNumber)
	if _, err := r.p.RedeployNodes(context.Background(), "shop-web", ids, inventory.TriggerAPI); !errors.Is(err, ErrNotCurrent) || len(r.fleet.sent) != 2 {
		t.Fatalf("after a renewal: %v, want ErrNotCurrent and nothing sent", err)
	}
	if _, err := r.p.RedeployNodes(context.Background(), "nope", ids, inventory.TriggerAPI); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("unknown name: %v", err)
	}
}

// fakeSecrets answers DeleteSecret per secret id.
type fakeSecrets struct {
	existing  map[string]bool // false: scheduled already
	deletions []secretsmanager.DeleteSecretInput
	fail      error
}

func (f *fakeSecrets) DeleteSecret(_ context.Context, in *secretsmanager.DeleteSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	f.deletions = append(f.deletions, *in)
	if f.fail != nil {
		return nil, f.fail
	}
	live, ok := f.existing[*in.SecretId]
	switch {
	case !ok:
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("not found")}
	case !live:
		return nil, &smtypes.InvalidRequestException{Message: aws.String("marked for deletion")}
	}
	f.existing[*in.SecretId] = false
	d := time.Date(2026, 12, 29, 0, 0, 0, 0, time.UTC)
	return &secretsmanager.DeleteSecretOutput{ARN: aws.String("arn:" + *in.SecretId), DeletionDate: &d}, nil
}

func (f *fakeSecrets) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	if live, ok := f.existing[*in.SecretId]; ok && !live {
		d := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		return &secretsmanager.DescribeSecretOutput{ARN: aws.String("arn:" + *in.SecretId), DeletedDate: &d}, nil
	}
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String("arn:" + *in.SecretId)}, nil
}

func TestSecretRemover(t *testing.T) {
	f := &fakeSecrets{existing: map[string]bool{"certferry/shop-web": true, "certferry/shop-web/keystore": true, "certferry/pem-only": true}}
	r := NewSecretRemover(f, "certferry/")
	got, err := r.Remove(context.Background(), "shop-web", DefaultRecoveryDays)
	if err != nil || len(got) != 2 || got[0].Name != "certferry/shop-web" || got[1].Name != "certferry/shop-web/keystore" ||
		got[0].RecoveryWindowDays != 30 || got[0].DeletionDate != "2026-12-29T00:00:00Z" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, d := range f.deletions {
		if aws.ToInt64(d.RecoveryWindowInDays) != 30 || d.ForceDeleteWithoutRecovery != nil {
			t.Fatalf("deletion %+v", d)
		}
	}
	// The retry: both already scheduled.
	got, err = r.Remove(context.Background(), "shop-web", 30)
	if err != nil || len(got) != 2 || !got[0].AlreadyScheduled || !got[1].AlreadyScheduled {
		t.Fatalf("retry: %+v %v", got, err)
	}
	// A PEM name has no keystore secret; an unknown name has nothing.
	if got, err := r.Remove(context.Background(), "pem-only", 7); err != nil || len(got) != 1 || got[0].RecoveryWindowDays != 7 {
		t.Fatalf("pem-only: %+v %v", got, err)
	}
	if got, err := r.Remove(context.Background(), "nope", 30); err != nil || len(got) != 0 {
		t.Fatalf("unknown: %+v %v", got, err)
	}
	for _, days := range []int{0, 6, 31} {
		n := len(f.deletions)
		if _, err := r.Remove(context.Background(), "shop-web", days); err == nil || len(f.deletions) != n {
			t.Fatalf("window %d: %v", days, err)
		}
	}
	f.fail = errors.New("throttled")
	if _, err := r.Remove(context.Background(), "x", 30); err == nil {
		t.Fatal("a failing DeleteSecret was not reported")
	}
}
