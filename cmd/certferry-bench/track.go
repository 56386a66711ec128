package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/tracker"
)

func isWrite(op string) bool {
	return slices.Contains([]string{"DynamoDB.PutItem", "DynamoDB.UpdateItem", "DynamoDB.DeleteItem", "DynamoDB.TransactWriteItems", "DynamoDB.BatchWriteItem"}, op)
}

// trackerShard is how many nodes share one table in the tracker benchmark.
// moto deep-copies the whole table on every TransactWriteItems (its
// rollback), so one 10 000-node table makes the emulator, not certferry,
// the measure (events slow down as the table fills: 3 140 events took 14
// minutes on one table; 78 ms per event at 1 000 nodes per table).
// DynamoDB's transaction cost does not depend on table size, so the events
// are spread over tables of trackerShard nodes, one deployment each, all
// handled by the real tracker.
const trackerShard = 100

// benchTracker feeds deployments' worth of invocation status events (one
// per node, each node printing its CERTFERRY_RESULT line) and each
// command's final status to the tracker, and counts its DynamoDB writes.
func benchTracker(ctx context.Context, moto *motoserver.Server, cfg settings, rep *Report) error {
	r, err := newRig(ctx, moto)
	if err != nil {
		return err
	}
	defer r.close()
	raw, err := os.ReadFile("events/tracker-invocation-success.json")
	if err != nil {
		return err
	}
	cmdEv, err := os.ReadFile("events/tracker-command-success.json")
	if err != nil {
		return err
	}
	setupDDB := dynamodb.NewFromConfig(r.setup)
	var elapsed time.Duration
	calls := map[string]int{}
	done := 0
	for shard := 0; done < cfg.events; shard++ {
		n := min(trackerShard, cfg.events-done)
		c := r.cfg
		c.Table = fmt.Sprintf("%s-%d", r.cfg.Table, shard)
		if _, err := setupDDB.CreateTable(ctx, localenv.TableInput(c.Table)); err != nil {
			return fmt.Errorf("create table %s: %w", c.Table, err)
		}
		r.standInCommands(n)
		arn, err := localenv.RequestExportable(ctx, r.setup, "shop.example.com")
		if err != nil {
			return err
		}
		if err := post(ctx, app.Onboard(r.aws, c, app.Options{}), onboardBody(arn, "tracked")); err != nil {
			return err
		}
		cert, err := inventory.NewStore(setupDDB, c.Table).GetCert(ctx, "tracked")
		if err != nil || cert == nil {
			return fmt.Errorf("read tracked: %v", err)
		}
		r.ssm.output = "installed\n" + document.Result{Status: document.StatusInstalled, Fingerprint: cert.Fingerprint, Serial: cert.Serial,
			Reload: "done", Verify: "ok", Detail: "installed tracked"}.Line() + "\n"
		tr := app.Tracker(r.aws, c, app.Options{SSM: ssm.NewFromConfig(r.aws), Metrics: io.Discard})
		tmplRaw, err := localenv.StatusEvent(raw, cert.LastCommandID, "", c.Document, "")
		if err != nil {
			return err
		}
		tmpl := string(tmplRaw)
		r.count.take()
		start := time.Now()
		for i := range n {
			ev := strings.Replace(strings.ReplaceAll(tmpl, localenv.SampleInstanceID, fmt.Sprintf("i-%08x%09x", shard, i)),
				"3b2c1d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", fmt.Sprintf("3b2c1d4e-5f60-4a7b-8c9d-%012d", done+i), 1)
			out, err := tr.Handle(ctx, json.RawMessage(ev))
			if err != nil {
				return err
			}
			if out.Status != tracker.StatusRecorded || out.NodeState != inventory.NodeInstalled {
				return fmt.Errorf("event %d: %+v", done+i, out)
			}
		}
		elapsed += time.Since(start)
		for op, k := range r.count.take() {
			calls[op] += k
		}
		final, err := localenv.StatusEvent(cmdEv, cert.LastCommandID, "", c.Document, "")
		if err != nil {
			return err
		}
		out, err := tr.Handle(ctx, final)
		if err != nil || out.Deployment != inventory.OutcomeSucceeded {
			return fmt.Errorf("command event: %+v %v", out, err)
		}
		done += n
	}
	n := float64(cfg.events)
	note := fmt.Sprintf("DynamoDB: moto, %d nodes per table (see trackerShard); ListCommandInvocations + GetCommandInvocation (step of the node's platform): stand-in (moto lacks the one, answers no output to the other)", trackerShard)
	rep.add("tracker", fmt.Sprintf("%d invocation events", cfg.events), elapsed.Seconds(), "s", note)
	rep.add("tracker", "time per event", float64(elapsed.Microseconds())/1000/n, "ms", "sequential, one process")
	rep.add("tracker", "DynamoDB writes per event", float64(total(calls, isWrite))/n, "writes", "one transaction: NODE + DEPLOY counts")
	rep.add("tracker", "AWS calls per event", float64(total(calls, nil))/n, "calls", opsList(calls))
	rep.Calls["tracker (all events)"] = calls
	return nil
}

// dynamoDBShards is how many minidyn shards answer the sweeper bench's
// DynamoDB calls (scalingDynamoDB): about 160 names each at 10 000 names.
const dynamoDBShards = 64

// benchSweeper seeds certs names, each bound to its own certificate and tagged
// group of nodes, all installed at ACM's serial, then times one sweep.
func benchSweeper(ctx context.Context, moto *motoserver.Server, cfg settings, rep *Report) error {
	r, err := newRig(ctx, moto)
	if err != nil {
		return err
	}
	defer r.close()
	r.ssm.groups = map[string][]string{}
	r.proxy.Answer("AmazonSSM.DescribeInstanceInformation", r.ssm.describeInstanceInformation)
	dyn := newScalingDynamoDB(r.setup, dynamoDBShards)
	defer dyn.close()
	r.proxy.Use(dyn.layer)
	// Through the guarded proxy: the model check learns the table's keys
	// (DynamoDB's key size limits) from this CreateTable.
	if err := dyn.createTable(ctx, dynamodb.NewFromConfig(r.aws), r.cfg.Table); err != nil {
		return err
	}
	// SQS and ACM's DescribeCertificate answered in process where moto
	// cannot keep up at 10 000 names (sqsStandIn, acmDescriptions).
	sq := newSQSStandIn(r.setup.Region)
	r.proxy.Use(sq.layer)
	descs, err := newACMDescriptions(ctx, r.setup)
	if err != nil {
		return err
	}
	r.proxy.Use(descs.layer)
	ddb := dyn.api
	var batch []ddbtypes.WriteRequest
	flush := func() error {
		for len(batch) > 0 {
			n := min(25, len(batch))
			out, err := ddb.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{r.cfg.Table: batch[:n]}})
			if err != nil {
				return err
			}
			batch = append(batch[n:], out.UnprocessedItems[r.cfg.Table]...)
		}
		return nil
	}
	put := func(v any) error {
		item, err := attributevalue.MarshalMap(v)
		if err != nil {
			return err
		}
		batch = append(batch, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
		if len(batch) >= 25 {
			return flush()
		}
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second) // stored as RFC 3339, whole seconds (inventory.FormatTime)
	seedStart := time.Now()
	var seeded []string
	for i := range cfg.certs {
		if i > 0 && i%1000 == 0 {
			fmt.Fprintf(os.Stderr, "   seeded %d names in %s\n", i, time.Since(seedStart).Round(time.Second))
		}
		arn := fmt.Sprintf("arn:aws:acm:%s:123456789012:certificate/%08x-0000-4000-8000-%012x", r.setup.Region, i, i)
		serial, err := certs.NormalizeSerial(colonSerial(i)) // as certferry stores ACM's serial
		if err != nil {
			return err
		}
		descs.add(arn, fmt.Sprintf("site%d.example.com", i), colonSerial(i))
		name := fmt.Sprintf("site-%d", i)
		seeded = append(seeded, name)
		group := fmt.Sprintf("g%d", i)
		sp := spec.Spec{Name: name, CertificateARN: arn, Targets: []spec.Target{{Key: "tag:group", Values: []string{group}}}}
		sp.ApplyDefaults()
		// The items a deployed name has (what onboarding, its deployment
		// and the tracker write), so that the sweep's reads and the
		// table's size are a real inventory's: META with its secret,
		// fingerprint and last deployment, the finished DEPLOY item (kept
		// DeployRetention), and each node installed by that command.
		fp := fmt.Sprintf("%064x", i+1)
		cmdID := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		depID := now.Add(-time.Hour).Format(inventory.DeploymentTimeFormat) + "#" + cmdID
		secret := fmt.Sprintf("arn:aws:secretsmanager:%s:123456789012:secret:certferry/%s-AbCdEf", r.setup.Region, name)
		secretVersion := fmt.Sprintf("%08x-1111-4000-8000-%012x", i, i)
		if err := put(inventory.Cert{PK: inventory.CertKey(name), SK: "META", Spec: sp, SecretARN: secret, SecretVersionID: secretVersion,
			Serial: serial, Fingerprint: fp, NotAfter: descs.notAfter(), DomainName: fmt.Sprintf("site%d.example.com", i),
			Status: inventory.StatusActive, LastDeploymentID: depID, LastCommandID: cmdID, Version: 2, CreatedAt: now, UpdatedAt: now,
			ExportedAt: now.Add(-time.Hour)}); err != nil {
			return err
		}
		if err := put(inventory.Deployment{PK: inventory.CertKey(name), SK: "DEPLOY#" + depID, ID: depID, Name: name, CommandID: cmdID,
			Trigger: inventory.TriggerAPI, Serial: serial, Fingerprint: fp, SecretVersionID: secretVersion,
			Counts: map[inventory.NodeState]int{inventory.NodeInstalled: cfg.nodes}, Outcome: inventory.OutcomeSucceeded,
			CreatedAt: now.Add(-time.Hour), Expected: cfg.nodes, CommandStatus: "Success", FinishedAt: now.Add(-50 * time.Minute),
			ExpiresAt: now.Add(inventory.DefaultDeployRetention).Unix()}); err != nil {
			return err
		}
		for k := range cfg.nodes {
			id := fmt.Sprintf("i-%08x%09x", i, k)
			r.ssm.groups["tag:group="+group] = append(r.ssm.groups["tag:group="+group], id)
			if err := put(inventory.Node{PK: inventory.CertKey(name), SK: "NODE#" + id, InstanceID: id, State: inventory.NodeInstalled,
				Serial: serial, Fingerprint: fp, LastCommandID: cmdID, DeploymentID: depID, UpdatedAt: now}); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	inventoryBytes, err := dyn.tableBytes(ctx, r.cfg.Table)
	if err != nil {
		return err
	}
	// The fan-out as it runs locally (app.LocalSweep): the scheduled side
	// enqueues one SQS message per name on moto's SQS, then one worker
	// drains the queue in batches of app.SweepBatchSize through the same
	// Worker.Handle the sweep-worker function runs. Pacing is off (-1):
	// in AWS each worker keeps app.SweepNameInterval between names
	// (docs/performance.md); here the bench measures certferry's own cost.
	h, err := app.LocalSweep(ctx, r.aws, r.cfg, app.Options{SweepPacing: -1, Metrics: io.Discard})
	if err != nil {
		return err
	}
	runID := app.RunID(nil, time.Now())
	r.count.take()
	start := time.Now()
	started, err := h.Local.Fanout.Start(ctx, runID)
	if err != nil {
		return err
	}
	enqueueTime := time.Since(start)
	enqueueCalls := r.count.take()
	res, err := h.Local.Drain(ctx, runID)
	elapsed := time.Since(start)
	drainTime := elapsed - enqueueTime
	if err != nil {
		return err
	}
	drainCalls := r.count.take()
	calls := map[string]int{}
	for _, m := range []map[string]int{enqueueCalls, drainCalls} {
		for op, k := range m {
			calls[op] += k
		}
	}
	run, err := sweeper.NewRuns(ddb, r.cfg.Table).Get(ctx, runID) // uncounted
	if err != nil {
		return err
	}
	if err := checkSweep(seeded, started, res, run, calls); err != nil {
		return fmt.Errorf("the sweep of a converged fleet: %w", err)
	}
	size, err := dyn.tableBytes(ctx, r.cfg.Table)
	if err != nil {
		return err
	}
	runBytes := size - inventoryBytes
	// Every run's records stay RunRetention (expiresAt, the table's TTL)
	// and ListCerts is a Scan of the whole table: at a daily schedule the
	// enqueue's Scan reads the inventory and RunRetention/day runs' records.
	retained := int(sweeper.RunRetention / (24 * time.Hour))
	steady := inventoryBytes + retained*runBytes
	names := float64(cfg.certs)
	section := fmt.Sprintf("sweeper fan-out, %d names × %d nodes", cfg.certs, cfg.nodes)
	rep.add(section, "whole run (enqueue + drain, one process)", elapsed.Seconds(), "s", fmt.Sprintf("DynamoDB: minidyn in %d shards by partition (scalingDynamoDB; moto copies its tables on every transaction); SQS: stand-in (sqsStandIn; moto scans its queue on every call); ACM DescribeCertificate: one real moto certificate, exported, as the shape of every answer (acmDescriptions); DescribeInstanceInformation: stand-in (moto lacks it); SNS: moto", dynamoDBShards))
	rep.add(section, "enqueue (ListCerts + SendMessageBatch)", enqueueTime.Seconds(), "s", opsList(enqueueCalls))
	rep.add(section, "inventory size (DynamoDB's item sizes)", float64(inventoryBytes)/1e6, "MB",
		fmt.Sprintf("DynamoDB's Scan reads ≤ 1 MB per page: the first run's enqueue Scan takes about %d pages on DynamoDB (here one or more per shard)", inventoryBytes/(1<<20)+1))
	rep.add(section, "one run's records (SWEEP#<run>: results and the run)", float64(runBytes)/1e6, "MB", "")
	rep.add(section, fmt.Sprintf("table size with %d daily runs retained", retained), float64(steady)/1e6, "MB",
		fmt.Sprintf("run records expire after sweeper.RunRetention; ListCerts scans the whole table: about %d Scan pages per enqueue on DynamoDB once %d daily runs are kept", steady/(1<<20)+1, retained))
	rep.add(section, "queue drain (one worker, batches of 5)", drainTime.Seconds(), "s", "")
	rep.add(section, "time per name (drain)", float64(drainTime.Microseconds())/1000/names, "ms", "sequential, one worker")
	rep.add(section, "AWS calls", float64(total(calls, nil)), "calls", opsList(calls))
	rep.add(section, "AWS calls per name", float64(total(calls, nil))/names, "calls", perName(calls, names))
	rep.Calls[section] = calls
	return nil
}

// perName lists the calls per name by operation.
func perName(calls map[string]int, names float64) string {
	var ops []string
	for op, k := range calls {
		ops = append(ops, fmt.Sprintf("%s %.2f", op, float64(k)/names))
	}
	sort.Strings(ops)
	return strings.Join(ops, ", ")
}
