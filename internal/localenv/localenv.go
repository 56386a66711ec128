// Package localenv creates, in whatever endpoint the SDK is pointed at (moto
// locally), every resource certferry's handlers need: the inventory table
// with its GSI and TTL, the SSM document from ssm-documents/, the SNS topic
// and the KMS key for secrets. Every step is idempotent.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
)

// Names of the local resources.
const (
	TableName    = "certferry-inventory"
	DocumentName = "certferry-install"
	TopicName    = "certferry-alerts"
	KeyAlias     = "alias/certferry"
	DocumentFile = "ssm-documents/certferry-install.yaml"
)

// Env is what Up created, as the handlers' configuration. Against an
// emulator it includes the local schedule settings (LocalSchedule): the
// schedule group is the local proxy's (Proxy, ScheduleGroup).
type Env struct {
	Region   string
	Endpoint string
	Config   config.Config
}

// Exports are the `export VAR=value` lines for a shell.
func (e Env) Exports() []string {
	lines := []string{
		"export AWS_REGION=" + e.Region,
		"export " + config.EnvTable + "=" + e.Config.Table,
		"export " + config.EnvDocument + "=" + e.Config.Document,
		"export " + config.EnvTopicARN + "=" + e.Config.TopicARN,
		"export " + config.EnvKMSKeyID + "=" + e.Config.KMSKeyID,
		"export " + config.EnvSecretPrefix + "=" + e.Config.SecretPrefix,
	}
	if sc := e.Config.Schedule; sc.Configured() {
		lines = append(lines,
			"export "+config.EnvScheduleGroup+"="+sc.Group,
			"export "+config.EnvSchedulerRoleARN+"="+sc.RoleARN,
			"export "+config.EnvStepTargetARN+"="+sc.TargetARN)
	}
	if e.Endpoint != "" {
		lines = append([]string{"export AWS_ENDPOINT_URL=" + e.Endpoint}, lines...)
	}
	return lines
}

// Up creates (or finds) every resource. documentPath is the SSM document
// YAML to register.
func Up(ctx context.Context, cfg aws.Config, documentPath string) (Env, error) {
	env := Env{Region: cfg.Region, Config: config.Config{SecretPrefix: "certferry/", RenewBeforeDays: 30}}
	if cfg.BaseEndpoint != nil {
		env.Endpoint = *cfg.BaseEndpoint
	} else if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		env.Endpoint = v
	}
	var err error
	if env.Config.Table, err = ensureTable(ctx, dynamodb.NewFromConfig(cfg)); err != nil {
		return env, err
	}
	if env.Config.Document, err = ensureDocument(ctx, ssm.NewFromConfig(cfg), documentPath); err != nil {
		return env, err
	}
	if env.Config.TopicARN, err = ensureTopic(ctx, sns.NewFromConfig(cfg)); err != nil {
		return env, err
	}
	if env.Config.KMSKeyID, err = ensureKey(ctx, kms.NewFromConfig(cfg)); err != nil {
		return env, err
	}
	if env.Endpoint != "" {
		// Timed rollout steps: the local proxy serves Scheduler and fires
		// the schedules (StepFirer). In a real account they need the
		// stack's schedule group and role: none here.
		env.Config.Schedule = LocalSchedule(accountOf(env.Config.TopicARN), env.Region)
	}
	return env, nil
}

// TableInput is the inventory table's definition, as in template.yaml.
func TableInput(name string) *dynamodb.CreateTableInput {
	s := func(n string) ddbtypes.AttributeDefinition {
		return ddbtypes.AttributeDefinition{AttributeName: aws.String(n), AttributeType: ddbtypes.ScalarAttributeTypeS}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{s("PK"), s("SK"), s("certificateArn"), s("instanceId")},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: ddbtypes.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName: aws.String(inventory.ARNIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("certificateArn"), KeyType: ddbtypes.KeyTypeHash},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeInclude, NonKeyAttributes: []string{"name"}},
		}, {
			IndexName: aws.String(inventory.NodeIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("instanceId"), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String("PK"), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeInclude, NonKeyAttributes: inventory.NodeIndexAttributes},
		}},
	}
}

func ensureTable(ctx context.Context, api *dynamodb.Client) (string, error) {
	_, err := api.CreateTable(ctx, TableInput(TableName))
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return "", fmt.Errorf("create table %s: %w", TableName, err)
	}
	if err := dynamodb.NewTableExistsWaiter(api).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(TableName)}, time.Minute); err != nil {
		return "", fmt.Errorf("wait for table %s: %w", TableName, err)
	}
	if _, err := api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(TableName),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(inventory.TTLAttribute), Enabled: aws.Bool(true)},
	}); err != nil && !strings.Contains(err.Error(), "already enabled") {
		return "", fmt.Errorf("enable TTL on %s: %w", TableName, err)
	}
	if _, err := api.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
		TableName:                        aws.String(TableName),
		PointInTimeRecoverySpecification: &ddbtypes.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)},
	}); err != nil {
		return "", fmt.Errorf("enable PITR on %s: %w", TableName, err)
	}
	return TableName, nil
}

func ensureDocument(ctx context.Context, api *ssm.Client, path string) (string, error) {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read SSM document: %w (run certferry from the certferry repository's root: local up reads ssm-documents/ and builds certferry-node from source)", err)
	}
	if err != nil {
		return "", fmt.Errorf("read SSM document: %w", err)
	}
	_, err = api.CreateDocument(ctx, &ssm.CreateDocumentInput{
		Name: aws.String(DocumentName), Content: aws.String(string(content)),
		DocumentFormat: ssmtypes.DocumentFormatYaml, DocumentType: ssmtypes.DocumentTypeCommand,
	})
	var exists *ssmtypes.DocumentAlreadyExists
	if err == nil || !errors.As(err, &exists) {
		if err != nil {
			return "", fmt.Errorf("create SSM document %s: %w", DocumentName, err)
		}
		return DocumentName, nil
	}
	// Present already: bring it up to date and make the new version default.
	upd, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{
		Name: aws.String(DocumentName), Content: aws.String(string(content)),
		DocumentFormat: ssmtypes.DocumentFormatYaml, DocumentVersion: aws.String("$LATEST"),
	})
	var same *ssmtypes.DuplicateDocumentContent
	if errors.As(err, &same) {
		return DocumentName, nil
	}
	if err != nil {
		return "", fmt.Errorf("update SSM document %s: %w", DocumentName, err)
	}
	if _, err := api.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{
		Name: aws.String(DocumentName), DocumentVersion: upd.DocumentDescription.DocumentVersion,
	}); err != nil {
		return "", fmt.Errorf("set default version of %s: %w", DocumentName, err)
	}
	return DocumentName, nil
}

func ensureTopic(ctx context.Context, api *sns.Client) (string, error) {
	out, err := api.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(TopicName)})
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", TopicName, err)
	}
	return aws.ToString(out.TopicArn), nil
}

func ensureKey(ctx context.Context, api *kms.Client) (string, error) {
	aliases := kms.NewListAliasesPaginator(api, &kms.ListAliasesInput{})
	for aliases.HasMorePages() {
		page, err := aliases.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list KMS aliases: %w", err)
		}
		for _, a := range page.Aliases {
			if aws.ToString(a.AliasName) == KeyAlias && a.TargetKeyId != nil {
				return aws.ToString(a.TargetKeyId), nil
			}
		}
	}
	key, err := api.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("certferry certificate bundles")})
	if err != nil {
		return "", fmt.Errorf("create KMS key: %w", err)
	}
	id := aws.ToString(key.KeyMetadata.KeyId)
	if _, err := api.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(KeyAlias), TargetKeyId: aws.String(id)}); err != nil {
		return "", fmt.Errorf("create KMS alias %s: %w", KeyAlias, err)
	}
	return id, nil
}
