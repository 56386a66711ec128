package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
)

func onboardBody(arn, name string) string {
	return fmt.Sprintf(`{"certificateArn": %q, "name": %q, "targets": [{"key": "tag:env", "values": ["prod"]}],
		"linux": {"reloadService": "nginx", "serverName": "shop.example.com"}}`, arn, name)
}

func post(ctx context.Context, h interface {
	Handle(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
}, body string) error {
	resp, err := h.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: body})
	if err != nil {
		return err
	}
	if resp.StatusCode != 202 {
		return fmt.Errorf("onboarding answered %d: %s", resp.StatusCode, resp.Body)
	}
	return nil
}

// fleetRig is a fresh rig with fleet instances tagged env=prod. moto needs
// ~1 minute per SendCommand to resolve 10 000 tag targets (real SSM returns
// at once and resolves later) and 3.5 minutes to launch them; nothing in an
// onboarding or a renewal reads the instances, so above 100 nodes the
// stand-in answers SendCommand and ListCommands as real SSM does, and the
// instances are not launched. The note says which.
func fleetRig(ctx context.Context, moto *motoserver.Server, fleet int) (*rig, string, error) {
	r, err := newRig(ctx, moto)
	if err != nil {
		return nil, "", err
	}
	if fleet > 100 {
		r.standInCommands(fleet)
		return r, "SSM SendCommand/ListCommands: stand-in in real SSM's shape; the rest moto", nil
	}
	if _, err := localenv.LaunchInstances(ctx, r.setup, fleet, map[string]string{"env": "prod"}); err != nil {
		r.close()
		return nil, "", err
	}
	return r, "moto for every call", nil
}

// fleetSeries collects the latencies of one fleet size's runs and checks
// that every run made the same AWS calls.
type fleetSeries struct {
	fleet int
	lat   []time.Duration
	calls map[string]int
}

func (f *fleetSeries) lap(run int, took time.Duration, calls map[string]int) error {
	f.lat = append(f.lat, took)
	if f.calls == nil {
		f.calls = calls
	} else if !maps.Equal(f.calls, calls) {
		return fmt.Errorf("fleet %d: run %d made calls %s, run 0 made %s", f.fleet, run, opsList(calls), opsList(f.calls))
	}
	return nil
}

// report adds the series to rep and returns the calls to compare the next
// fleet size with; it fails when they differ from reference (calls must not
// grow with the fleet).
func (f *fleetSeries) report(rep *Report, section, per, note string, runs int, reference map[string]int) (map[string]int, error) {
	rep.add(section, "p50", percentile(f.lat, 0.5), "ms", note)
	rep.add(section, "p99", percentile(f.lat, 0.99), "ms", fmt.Sprintf("%d runs", runs))
	rep.add(section, "AWS calls per "+per, float64(total(f.calls, nil)), "calls", "")
	rep.Calls[section] = f.calls
	if reference != nil && !maps.Equal(reference, f.calls) {
		return nil, fmt.Errorf("AWS calls per %s grow with the fleet: %s at 1 node, %s at %d", per, opsList(reference), opsList(f.calls), f.fleet)
	}
	return f.calls, nil
}

// onboarding times whole onboardings through the API handler for fleets of
// 1, 100 and 10 000 tagged instances and counts the AWS calls of each.
func onboarding(ctx context.Context, moto *motoserver.Server, cfg settings, rep *Report) error {
	var reference map[string]int
	for _, fleet := range []int{1, 100, 10000} {
		r, note, err := fleetRig(ctx, moto, fleet)
		if err != nil {
			return err
		}
		arn, err := localenv.RequestExportable(ctx, r.setup, "shop.example.com")
		if err != nil {
			return err
		}
		h := app.Onboard(r.aws, r.cfg, app.Options{})
		series := fleetSeries{fleet: fleet}
		r.count.take()
		for i := range cfg.runs {
			start := time.Now()
			if err := post(ctx, h, onboardBody(arn, fmt.Sprintf("bench-%d", i))); err != nil {
				return err
			}
			if err := series.lap(i, time.Since(start), r.count.take()); err != nil {
				return err
			}
		}
		r.close()
		if reference, err = series.report(rep, fmt.Sprintf("onboarding, %d nodes", fleet), "deployment", note, cfg.runs, reference); err != nil {
			return err
		}
	}
	rep.add("onboarding", "calls independent of fleet size (1, 100, 10 000)", 1, "yes", opsList(reference))
	return nil
}

// renewal times the renewal handler on "ACM Certificate Available" for a
// name whose deployed serial is behind ACM's: the whole redeployment
// (serial check, export, verify, new secret version, SendCommand, commit),
// for fleets of 1, 100 and 10 000 tagged instances. moto cannot renew under
// one ARN, so before each run the name's secret and inventory are rewound
// to another serial; each run has its own certificate and name.
func renewal(ctx context.Context, moto *motoserver.Server, cfg settings, rep *Report) error {
	raw, err := os.ReadFile("events/renewal-available-renewal.json")
	if err != nil {
		return err
	}
	var reference map[string]int
	for _, fleet := range []int{1, 100, 10000} {
		r, note, err := fleetRig(ctx, moto, fleet)
		if err != nil {
			return err
		}
		h := app.Onboard(r.aws, r.cfg, app.Options{})
		rh := app.Renewal(r.aws, r.cfg, app.Options{})
		sm := secretsmanager.NewFromConfig(r.setup)
		ddb := dynamodb.NewFromConfig(r.setup)
		series := fleetSeries{fleet: fleet}
		for i := range cfg.runs {
			name := fmt.Sprintf("renew-%d", i)
			arn, err := localenv.RequestExportable(ctx, r.setup, "shop.example.com")
			if err != nil {
				return err
			}
			// The onboarding's command goes to the stand-in: moto cannot
			// renew, so the "renewed" certificate is the onboarded one, and
			// a command for it in moto would be adopted by the renewal
			// instead of sending one (the pipeline's resume path).
			r.standInCommands(fleet)
			if err := post(ctx, h, onboardBody(arn, name)); err != nil {
				return err
			}
			if fleet <= 100 {
				r.realCommands()
			}
			if err := rewind(ctx, sm, ddb, r.cfg.SecretPrefix+name, r.cfg.Table, name); err != nil {
				return err
			}
			ev := strings.ReplaceAll(string(raw), localenv.SampleARN, arn)
			ev = strings.Replace(ev, "6a7e8feb-b491-4cf7-a9f1-bf3703467718", fmt.Sprintf("6a7e8feb-b491-4cf7-a9f1-%012d", i), 1)
			r.count.take()
			start := time.Now()
			out, err := rh.Handle(ctx, json.RawMessage(ev))
			took := time.Since(start)
			if err != nil {
				return err
			}
			if len(out.Deployed) != 1 {
				return fmt.Errorf("run %d deployed %d names (%+v)", i, len(out.Deployed), out)
			}
			if err := series.lap(i, took, r.count.take()); err != nil {
				return err
			}
		}
		r.close()
		if reference, err = series.report(rep, fmt.Sprintf("renewal (ACM event), %d nodes", fleet), "renewal", note, cfg.runs, reference); err != nil {
			return err
		}
	}
	rep.add("renewal", "calls independent of fleet size (1, 100, 10 000)", 1, "yes", opsList(reference))
	return nil
}

// rewind makes a name's current secret version and inventory hold another
// serial, as before a renewal.
func rewind(ctx context.Context, sm *secretsmanager.Client, ddb *dynamodb.Client, secret, table, name string) error {
	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
	if err != nil {
		return err
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &b); err != nil {
		return err
	}
	b["serial"], b["fingerprintSha256"] = "1", "00"
	nb, _ := json.Marshal(b)
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secret), SecretString: aws.String(string(nb))}); err != nil {
		return err
	}
	_, err = ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(table),
		Key: map[string]ddbtypes.AttributeValue{
			"PK": &ddbtypes.AttributeValueMemberS{Value: inventory.CertKey(name)}, "SK": &ddbtypes.AttributeValueMemberS{Value: "META"}},
		UpdateExpression:          aws.String("SET serial = :s, #v = #v + :one"),
		ExpressionAttributeNames:  map[string]string{"#v": "version"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": &ddbtypes.AttributeValueMemberS{Value: "1"}, ":one": &ddbtypes.AttributeValueMemberN{Value: "1"}},
	})
	return err
}
