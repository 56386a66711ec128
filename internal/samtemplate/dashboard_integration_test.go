//go:build integration

package samtemplate

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/certferry/certferry/internal/metrics"
)

// The dashboard as CloudFormation creates it: the SAM-translated template's
// Dashboard, its Fn::Sub body evaluated for a stack "certferry" in
// us-east-1 with the parameters' defaults. A resource reference becomes
// "<Id>" (Ref) or "<Id.Attr>" (GetAtt), after checking the resource exists.
type dashboard struct {
	name      string
	body      map[string]any
	resources map[string]map[string]any // translated template
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func subEval(t *testing.T, tmpl map[string]any, s string, pseudo map[string]string) string {
	t.Helper()
	res := tmpl["Resources"].(map[string]any)
	params, _ := tmpl["Parameters"].(map[string]any)
	return subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := pseudo[name]; ok {
			return v
		}
		if p, ok := params[name].(map[string]any); ok {
			return fmt.Sprint(p["Default"])
		}
		id, _, _ := strings.Cut(name, ".")
		if _, ok := res[id]; !ok {
			t.Errorf("Fn::Sub names %s: no such resource or parameter", m)
		}
		return "<" + name + ">"
	})
}

// translated is the SAM translation of template.yaml, made once for the
// tests of this file (the translator takes seconds); callers must not
// modify it.
var translated struct {
	once sync.Once
	tmpl map[string]any
	err  error
}

func translatedOnce(t *testing.T) map[string]any {
	t.Helper()
	translated.once.Do(func() { translated.tmpl, translated.err = translateTemplate("pkg-ops") })
	if translated.err != nil {
		t.Fatal(translated.err)
	}
	return translated.tmpl
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	tmpl := translatedOnce(t)
	res := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		res[id], _ = r.(map[string]any)
	}
	d := res["Dashboard"]
	if d == nil || d["Type"] != "AWS::CloudWatch::Dashboard" {
		t.Fatalf("translated template has no AWS::CloudWatch::Dashboard named Dashboard: %v", d)
	}
	p := d["Properties"].(map[string]any)
	pseudo := map[string]string{"AWS::StackName": "certferry", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
	sub := func(v any) string {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("expected an Fn::Sub, got %v", v)
		}
		s, ok := m["Fn::Sub"].(string)
		if !ok {
			t.Fatalf("expected an Fn::Sub string, got %v", v)
		}
		return subEval(t, tmpl, s, pseudo)
	}
	out := dashboard{name: sub(p["DashboardName"]), resources: res}
	raw := sub(p["DashboardBody"])
	if err := json.Unmarshal([]byte(raw), &out.body); err != nil {
		t.Fatalf("DashboardBody is not JSON once substituted: %v\n%s", err, raw)
	}
	return out
}

func (d dashboard) widgets(typ string) []map[string]any {
	var out []map[string]any
	for _, w := range asList(d.body["widgets"]) {
		w, _ := w.(map[string]any)
		if w != nil && (typ == "" || w["type"] == typ) {
			out = append(out, w)
		}
	}
	return out
}

// metricLine is one entry of a metric widget's "metrics" array.
type metricLine struct {
	namespace, name string
	dims            map[string]string
	opts            map[string]any
	widget          string
}

// lines expands the metrics arrays, including the documented "." shorthand
// (the same value as the line above).
func (d dashboard) lines(t *testing.T) []metricLine {
	t.Helper()
	var out []metricLine
	for _, w := range d.widgets("metric") {
		p := w["properties"].(map[string]any)
		title := fmt.Sprint(p["title"])
		var prev []any
		for _, l := range asList(p["metrics"]) {
			arr, _ := l.([]any)
			var strs []any
			ml := metricLine{dims: map[string]string{}, widget: title}
			for _, x := range arr {
				if o, ok := x.(map[string]any); ok {
					ml.opts = o
					continue
				}
				strs = append(strs, x)
			}
			for i, x := range strs {
				if x == "." && i < len(prev) {
					strs[i] = prev[i]
				}
			}
			prev = strs
			if len(strs) == 0 {
				out = append(out, ml)
				continue
			}
			ml.namespace, ml.name = fmt.Sprint(strs[0]), fmt.Sprint(strs[1])
			for i := 2; i+1 < len(strs); i += 2 {
				ml.dims[fmt.Sprint(strs[i])] = fmt.Sprint(strs[i+1])
			}
			out = append(out, ml)
		}
	}
	return out
}

// searchExpr reads SEARCH('{Namespace,Dim…} MetricName="X"', 'Stat', Period).
var searchExpr = regexp.MustCompile(`SEARCH\('\{([^}]*)\} MetricName="([A-Za-z0-9_]+)"', '([A-Za-z0-9.]+)', ([0-9]+)\)`)

// The body follows "Dashboard Body Structure and Syntax" (CloudWatch API
// Reference): a widgets array of at most 500; each widget a known type on
// the 24-column grid with properties; metric widgets with a region and a
// metrics array whose lines are [Namespace, MetricName, (DimName,
// DimValue)…, {rendering properties}] or [{expression, id}], periods of 60 s
// multiples, statistics CloudWatch knows, expression ids starting with a
// lowercase letter (GetMetricData's MetricDataQuery Id); log widgets with a
// region and a query; alarm widgets with alarm ARNs; text widgets with
// markdown. PutDashboard's DashboardName: at most 255 characters, A-Z a-z
// 0-9 - _ (CloudWatch API Reference, PutDashboard).
func TestDashboardFollowsTheDocumentedSyntax(t *testing.T) {
	d := loadDashboard(t)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`).MatchString(d.name) {
		t.Errorf("dashboard name %q is not one PutDashboard accepts", d.name)
	}
	for k := range d.body {
		if !slices.Contains([]string{"widgets", "start", "end", "periodOverride", "variables"}, k) {
			t.Errorf("unknown top-level key %q", k)
		}
	}
	ws := d.widgets("")
	if len(ws) == 0 || len(ws) > 500 || len(ws) != len(asList(d.body["widgets"])) {
		t.Fatalf("%d widgets", len(ws))
	}
	statOK := regexp.MustCompile(`^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?|p100)$`)
	idOK := regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for i, w := range ws {
		p, ok := w["properties"].(map[string]any)
		where := fmt.Sprintf("widget %d (%v)", i, p["title"])
		if !ok {
			t.Errorf("%s: no properties", where)
			continue
		}
		num := func(k string, def int) int {
			v, ok := w[k]
			if !ok {
				return def
			}
			f, ok := v.(float64)
			if !ok || f != float64(int(f)) {
				t.Errorf("%s: %s %v is not an integer", where, k, v)
			}
			return int(f)
		}
		x, y, wd, ht := num("x", 0), num("y", 0), num("width", 6), num("height", 6)
		if x < 0 || y < 0 || wd < 1 || wd > 24 || ht < 1 || ht > 1000 || x+wd > 24 {
			t.Errorf("%s: x %d y %d width %d height %d outside the 24-column grid", where, x, y, wd, ht)
		}
		for cx := x; cx < x+wd; cx++ {
			for cy := y; cy < y+ht; cy++ {
				if other, ok := taken[cell{cx, cy}]; ok {
					t.Errorf("%s overlaps %s at (%d,%d)", where, other, cx, cy)
					cy, cx = y+ht, x+wd
				}
				taken[cell{cx, cy}] = where
			}
		}
		switch w["type"] {
		case "metric":
			if p["region"] != "us-east-1" {
				t.Errorf("%s: region %v, not the stack's", where, p["region"])
			}
			if v, ok := p["view"]; ok && !slices.Contains([]any{"timeSeries", "singleValue", "gauge", "bar", "pie", "table"}, v) {
				t.Errorf("%s: view %v", where, v)
			}
			if s, ok := p["stat"]; ok && !statOK.MatchString(fmt.Sprint(s)) {
				t.Errorf("%s: stat %v", where, s)
			}
			if per, ok := p["period"].(float64); !ok || per < 60 || int(per)%60 != 0 {
				t.Errorf("%s: period %v is not a multiple of 60 s", where, p["period"])
			}
			ids := map[string]bool{}
			lines := asList(p["metrics"])
			if len(lines) == 0 || len(lines) > 500 {
				t.Errorf("%s: %d metrics", where, len(lines))
			}
			for _, l := range lines {
				arr, ok := l.([]any)
				if !ok || len(arr) == 0 {
					t.Errorf("%s: metric line %v is not a non-empty array", where, l)
					continue
				}
				var strs int
				for j, x := range arr {
					switch v := x.(type) {
					case string:
						strs++
					case map[string]any:
						if j != len(arr)-1 {
							t.Errorf("%s: rendering properties must come last in %v", where, arr)
						}
						for k := range v {
							if !slices.Contains([]string{"color", "label", "period", "stat", "visible", "yAxis", "id", "expression", "region", "accountId"}, k) {
								t.Errorf("%s: unknown rendering property %q", where, k)
							}
						}
						if s, ok := v["stat"]; ok && !statOK.MatchString(fmt.Sprint(s)) {
							t.Errorf("%s: stat %v", where, s)
						}
						if id, ok := v["id"]; ok {
							if !idOK.MatchString(fmt.Sprint(id)) || ids[fmt.Sprint(id)] {
								t.Errorf("%s: id %v not unique or not starting with a lowercase letter", where, id)
							}
							ids[fmt.Sprint(id)] = true
						}
						if e, ok := v["expression"].(string); ok {
							if strs != 0 || v["id"] == nil {
								t.Errorf("%s: an expression line holds only {expression, id, …}: %v", where, arr)
							}
							if strings.Contains(e, "SEARCH(") && len(searchExpr.FindAllString(e, -1)) != strings.Count(e, "SEARCH(") {
								t.Errorf("%s: SEARCH expression %q not in the form this test reads", where, e)
							}
						}
					default:
						t.Errorf("%s: %v in a metric line", where, x)
					}
				}
				if _, isExpr := arr[0].(map[string]any); !isExpr && (strs < 2 || strs%2 != 0) {
					t.Errorf("%s: metric line %v: want Namespace, MetricName and dimension name/value pairs", where, arr)
				}
			}
		case "log":
			q, _ := p["query"].(string)
			if p["region"] != "us-east-1" || !strings.HasPrefix(q, "SOURCE '") {
				t.Errorf("%s: log widget needs the region and a query starting with SOURCE: %v", where, p)
			}
			if v, ok := p["view"]; ok && !slices.Contains([]any{"table", "timeSeries", "bar", "pie"}, v) {
				t.Errorf("%s: view %v", where, v)
			}
		case "alarm":
			if len(asList(p["alarms"])) == 0 || len(asList(p["alarms"])) > 100 {
				t.Errorf("%s: alarms %v", where, p["alarms"])
			}
		case "text":
			if s, _ := p["markdown"].(string); s == "" {
				t.Errorf("%s: no markdown", where)
			}
		default:
			t.Errorf("%s: type %v", where, w["type"])
		}
	}
}

// Stacks of the same name in two regions of one account get two
// dashboards (dashboards are global to the account), and the name PutDashboard
// accepts whatever CloudFormation allows as a stack name (at most 128
// characters, [a-zA-Z][-a-zA-Z0-9]*).
func TestDashboardNameCarriesStackAndRegion(t *testing.T) {
	tmpl := translatedOnce(t)
	p := tmpl["Resources"].(map[string]any)["Dashboard"].(map[string]any)["Properties"].(map[string]any)
	expr, _ := p["DashboardName"].(map[string]any)["Fn::Sub"].(string)
	seen := map[string]bool{}
	for _, stack := range []string{"certferry", "a" + strings.Repeat("-x9", 42) + "b"} {
		for _, region := range []string{"us-east-1", "eu-west-3", "ap-southeast-5", "us-gov-west-1"} {
			n := subEval(t, tmpl, expr, map[string]string{"AWS::StackName": stack, "AWS::Region": region})
			if !strings.Contains(n, stack) || !strings.Contains(n, region) || !regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`).MatchString(n) {
				t.Errorf("stack %s in %s: dashboard name %q", stack, region, n)
			}
			if seen[n] {
				t.Errorf("two stacks share the dashboard name %q", n)
			}
			seen[n] = true
		}
	}
	outputs := tmpl["Outputs"].(map[string]any)
	url, _ := json.Marshal(outputs["DashboardUrl"])
	if !strings.Contains(string(url), "${Dashboard}") || !strings.Contains(string(url), "region=${AWS::Region}") {
		t.Errorf("DashboardUrl output %s does not open this stack's dashboard in its region", url)
	}
}

// Every certferry metric on the dashboard is one the code emits, under the
// namespace and dimensions it emits them with; every metric the code emits
// is on the dashboard. Names are read from the code (internal/metrics'
// callers), not from a copy.
func TestDashboardGraphsWhatCertferryEmits(t *testing.T) {
	code, unreadable, err := emittedMetrics("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range unreadable {
		t.Error(u)
	}
	if len(code.metrics) < 5 || len(code.dims) == 0 {
		t.Fatalf("read only %v metrics and %v dimensions from the code", sortedKeys(code.metrics), sortedKeys(code.dims))
	}
	d := loadDashboard(t)
	graphed := map[string]string{} // metric -> widget
	for _, l := range d.lines(t) {
		if l.namespace == metrics.Namespace {
			for k := range l.dims {
				if _, ok := code.dims[k]; !ok {
					t.Errorf("%s: dimension %s, which certferry does not emit", l.widget, k)
				}
			}
			if _, ok := code.metrics[l.name]; !ok {
				t.Errorf("%s: %s/%s, which certferry does not emit", l.widget, l.namespace, l.name)
			}
			graphed[l.name] = l.widget
		}
		e, _ := l.opts["expression"].(string)
		for _, m := range searchExpr.FindAllStringSubmatch(e, -1) {
			schema := strings.Split(m[1], ",")
			if schema[0] != metrics.Namespace {
				t.Errorf("%s: SEARCH in namespace %s, not %s", l.widget, schema[0], metrics.Namespace)
				continue
			}
			for _, k := range schema[1:] {
				if _, ok := code.dims[k]; !ok {
					t.Errorf("%s: SEARCH by dimension %s, which certferry does not emit", l.widget, k)
				}
			}
			if _, ok := code.metrics[m[2]]; !ok {
				t.Errorf("%s: SEARCH for %s, which certferry does not emit", l.widget, m[2])
			}
			graphed[m[2]] = l.widget
		}
	}
	for _, name := range sortedKeys(code.metrics) {
		if _, ok := graphed[name]; !ok {
			t.Errorf("%s emits %s; the dashboard does not show it", code.metrics[name], name)
		}
	}
	// Days to expiry is drawn against the alarm's threshold.
	ann, _ := json.Marshal(d.body)
	if !regexp.MustCompile(`"value":30\b`).Match(ann) {
		t.Error("no annotation at RenewBeforeDays (default 30) on the dashboard")
	}
}

// Lambda errors, throttles and duration of every function; the dead-letter
// queue's depth; the API's requests, 4xx, 5xx and latency under the name
// and stage API Gateway publishes them with (REST API metrics: ApiName,
// Stage); every alarm of the stack.
func TestDashboardCoversFunctionsQueueAPIAndAlarms(t *testing.T) {
	d := loadDashboard(t)
	lines := d.lines(t)
	var functions, alarms []string
	for id, r := range d.resources {
		switch r["Type"] {
		case "AWS::Lambda::Function":
			functions = append(functions, "<"+id+">")
		case "AWS::CloudWatch::Alarm":
			alarms = append(alarms, "<"+id+".Arn>")
		}
	}
	sort.Strings(functions)
	sort.Strings(alarms)
	if len(functions) < 5 {
		t.Fatalf("functions %v", functions)
	}
	for _, metric := range []string{"Errors", "Throttles", "Duration"} {
		var got []string
		for _, l := range lines {
			if l.namespace == "AWS/Lambda" && l.name == metric && strings.HasPrefix(l.widget, "Lambda "+strings.ToLower(metric)) {
				got = append(got, l.dims["FunctionName"])
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, functions) {
			t.Errorf("Lambda %s graphed for %v, want every function %v", metric, got, functions)
		}
	}
	has := func(ns, name string, dims map[string]string) bool {
		for _, l := range lines {
			if l.namespace == ns && l.name == name && fmt.Sprint(l.dims) == fmt.Sprint(dims) {
				return true
			}
		}
		return false
	}
	if !has("AWS/SQS", "ApproximateNumberOfMessagesVisible", map[string]string{"QueueName": "<EventsDLQ.QueueName>"}) {
		t.Error("dead-letter queue depth not graphed")
	}
	// The REST API's name is what SAM gives it (the Body's info.title) and
	// its stage the Stage resource's StageName.
	api := d.resources["Api"]["Properties"].(map[string]any)
	title, _ := json.Marshal(api["Body"].(map[string]any)["info"].(map[string]any)["title"])
	if string(title) != `{"Ref":"AWS::StackName"}` {
		t.Fatalf("the REST API is named %s, not the stack's name: the dashboard's ApiName dimension would miss it", title)
	}
	stage := ""
	for _, r := range d.resources {
		if r["Type"] == "AWS::ApiGateway::Stage" {
			stage = fmt.Sprint(r["Properties"].(map[string]any)["StageName"])
		}
	}
	apiDims := map[string]string{"ApiName": "certferry", "Stage": stage}
	for _, m := range []string{"Count", "4XXError", "5XXError", "Latency"} {
		if !has("AWS/ApiGateway", m, apiDims) {
			t.Errorf("API %s not graphed with %v", m, apiDims)
		}
	}
	var got []string
	for _, w := range d.widgets("alarm") {
		for _, a := range asList(w["properties"].(map[string]any)["alarms"]) {
			got = append(got, fmt.Sprint(a))
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, alarms) {
		t.Errorf("alarm widget shows %v, the stack has %v", got, alarms)
	}
}

// The log widgets read the functions' own log groups (/aws/lambda/<name>,
// the default when a function sets no LogGroup) and filter on messages and
// fields the code really logs (slog with lambdacontext's "message" key).
func TestDashboardLogQueriesMatchTheCode(t *testing.T) {
	d := loadDashboard(t)
	src := goSources(t, "../..")
	for _, f := range asList(d.resources["OnboardFunction"]["Properties"].(map[string]any)["LoggingConfig"]) {
		if lg, ok := f.(map[string]any)["LogGroup"]; ok {
			t.Fatalf("OnboardFunction logs to %v, not /aws/lambda/<name>", lg)
		}
	}
	source := regexp.MustCompile(`SOURCE '([^']*)'`)
	quoted := regexp.MustCompile(`"([^"]*)"`) // Logs Insights string literals, as its documentation writes them
	logs := d.widgets("log")
	if len(logs) == 0 {
		t.Fatal("no log widgets")
	}
	for _, w := range logs {
		p := w["properties"].(map[string]any)
		q := p["query"].(string)
		for _, m := range source.FindAllStringSubmatch(q, -1) {
			id := strings.TrimSuffix(strings.TrimPrefix(m[1], "/aws/lambda/<"), ">")
			if r := d.resources[id]; r == nil || r["Type"] != "AWS::Lambda::Function" || m[1] != "/aws/lambda/<"+id+">" {
				t.Errorf("%v: SOURCE %s is not a function's log group", p["title"], m[1])
			}
		}
		rest := source.ReplaceAllString(q, "")
		clause := regexp.MustCompile(`filter message (=|in) ([^|]*)`).FindStringSubmatch(rest)
		if clause == nil {
			continue
		}
		var fields []string
		if by := regexp.MustCompile(`stats (.*) by ([^|]*)`).FindStringSubmatch(rest); by != nil {
			for _, f := range strings.Split(by[2], ",") {
				fields = append(fields, strings.TrimSpace(f))
			}
			for _, m := range regexp.MustCompile(`(?:sum|avg|max|min)\((\w+)\)`).FindAllStringSubmatch(by[1], -1) {
				fields = append(fields, m[1])
			}
		}
		for _, m := range quoted.FindAllStringSubmatch(clause[2], -1) {
			call := logCall(src, m[1])
			if call == "" {
				t.Errorf("%v: filters on message %q, which the code never logs", p["title"], m[1])
				continue
			}
			for _, f := range fields {
				if f != "message" && !strings.Contains(call, `"`+f+`"`) {
					t.Errorf("%v: groups by %s, which the log line %q does not carry", p["title"], f, m[1])
				}
			}
		}
	}
}

// goSources is every non-test Go file under root, concatenated.
func goSources(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		raw, err := os.ReadFile(path)
		b.Write(raw)
		b.WriteString("\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// logCall is the text of the slog call (to its closing parenthesis) that
// logs msg, or "".
func logCall(src, msg string) string {
	loc := regexp.MustCompile(`slog\.(?:Info|Warn|Error|Debug)Context\(ctx, "` + regexp.QuoteMeta(msg) + `"`).FindStringIndex(src)
	if loc == nil {
		return ""
	}
	depth, inStr := 0, false
	for i := loc[0]; i < len(src); i++ {
		switch c := src[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return src[loc[0] : i+1]
			}
		}
	}
	return ""
}
