package busevents

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schemas, the samples and the Go types, one row per detail-type: a
// file name stem shared by docs/schemas/ and events/, and the Go type.
var kinds = []struct {
	detailType string
	file       string
	goType     reflect.Type
}{
	{TypeDeploymentFinished, "certferry-deployment-finished.json", reflect.TypeFor[DeploymentFinished]()},
	{TypeNodeFailed, "certferry-node-failed.json", reflect.TypeFor[NodeFailed]()},
	{TypeRenewalWaiting, "certferry-renewal-waiting.json", reflect.TypeFor[RenewalWaiting]()},
	{TypeCertificateAtRisk, "certferry-certificate-at-risk.json", reflect.TypeFor[CertificateAtRisk]()},
}

const (
	schemaDir = "../../docs/schemas"
	sampleDir = "../../events"
)

// compile compiles one schema file with santhosh-tekuri/jsonschema (a
// full JSON Schema validator: draft 4 through 2020-12), asserting formats
// (date-time) as well.
func compile(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(schemaDir, file))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	// EventBridge's Schema Registry takes JSONSchema Draft 4 (or OpenAPI 3):
	// the schemas say so, and the compiler reads them as draft 4.
	if m, _ := doc.(map[string]any); m["$schema"] != "http://json-schema.org/draft-04/schema#" {
		t.Fatalf("%s: $schema %v, want draft-04 (what the Schema Registry accepts)", file, m["$schema"])
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(file, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// Every sample validates against its schema, decodes strictly into its Go
// type, and encodes back to the same detail.
func TestSamplesMatchSchemasAndTypes(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.detailType, func(t *testing.T) {
			sch := compile(t, k.file)
			raw, err := os.ReadFile(filepath.Join(sampleDir, k.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(sch, raw); err != nil {
				t.Fatalf("events/%s does not validate: %v", k.file, err)
			}
			var ev struct {
				DetailType string          `json:"detail-type"`
				Source     string          `json:"source"`
				Detail     json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.DetailType != k.detailType || ev.Source != Source {
				t.Fatalf("sample is %q from %q", ev.DetailType, ev.Source)
			}
			v := reflect.New(k.goType)
			dec := json.NewDecoder(bytes.NewReader(ev.Detail))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v.Interface()); err != nil {
				t.Fatalf("detail into %s: %v", k.goType, err)
			}
			d := v.Elem().Interface().(Detail)
			if d.DetailType() != k.detailType {
				t.Fatalf("%s.DetailType() = %q", k.goType, d.DetailType())
			}
			back, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(t, back, ev.Detail) {
				t.Fatalf("round trip changed the detail:\n got %s\nwant %s", back, ev.Detail)
			}
		})
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// The Go types' JSON fields are exactly the schemas' properties, nested
// objects included; a field required by the schema is never omitempty in
// Go, and an omitempty field is never required.
func TestGoTypesAreTheSchemas(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.detailType, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(schemaDir, k.file))
			if err != nil {
				t.Fatal(err)
			}
			var s map[string]any
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			ref := s["properties"].(map[string]any)["detail"].(map[string]any)["$ref"].(string)
			detail := s["definitions"].(map[string]any)[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
			compareObject(t, k.goType.Name(), k.goType, detail)
		})
	}
}

func compareObject(t *testing.T, path string, typ reflect.Type, obj map[string]any) {
	t.Helper()
	if obj["type"] != "object" || obj["additionalProperties"] != false {
		t.Errorf("%s: schema is not a closed object (type object, additionalProperties false)", path)
	}
	props, _ := obj["properties"].(map[string]any)
	var required []string
	for _, r := range asSlice(obj["required"]) {
		required = append(required, r.(string))
	}
	goFields := map[string]reflect.StructField{}
	omit := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			t.Errorf("%s.%s has no JSON name", path, f.Name)
			continue
		}
		goFields[name] = f
		omit[name] = strings.Contains(opts, "omitempty")
	}
	if got, want := sortedKeys(goFields), sortedKeys(props); !slices.Equal(got, want) {
		t.Errorf("%s: Go fields %v, schema properties %v", path, got, want)
	}
	for name, f := range goFields {
		p, ok := props[name].(map[string]any)
		if !ok {
			continue
		}
		req := slices.Contains(required, name)
		if req == omit[name] {
			t.Errorf("%s.%s: required in the schema = %v, omitempty in Go = %v (they must differ)", path, name, req, omit[name])
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		want := map[reflect.Kind]string{reflect.String: "string", reflect.Int: "integer", reflect.Bool: "boolean", reflect.Struct: "object"}[ft.Kind()]
		if ft.String() == "time.Time" {
			want = "string"
			if p["format"] != "date-time" {
				t.Errorf("%s.%s: a time without format date-time", path, name)
			}
		}
		if p["type"] != want {
			t.Errorf("%s.%s: Go %s, schema type %v", path, name, ft, p["type"])
		}
		if ft.Kind() == reflect.Struct && ft.String() != "time.Time" {
			compareObject(t, path+"."+name, ft, p)
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The enums of the schemas are the Go constants.
func TestSchemaEnumsAreTheConstants(t *testing.T) {
	enum := func(file, prop string) []string {
		raw, err := os.ReadFile(filepath.Join(schemaDir, file))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Definitions map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"definitions"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, d := range s.Definitions {
			return d.Properties[prop].Enum
		}
		return nil
	}
	for _, tc := range []struct {
		file, prop string
		want       []string
	}{
		{"certferry-renewal-waiting.json", "reason", []string{WaitingWindow, WaitingApproval, WaitingHalted}},
		{"certferry-certificate-at-risk.json", "reason", RiskReasons},
		{"certferry-node-failed.json", "state", []string{"failed", "rolled_back"}},
		{"certferry-deployment-finished.json", "outcome", []string{"succeeded", "partial", "failed", "superseded"}},
	} {
		if got := enum(tc.file, tc.prop); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s enum %v, want %v", tc.file, tc.prop, got, tc.want)
		}
	}
}

// The schemas refuse what they must: the checks are not vacuous.
func TestSchemasRefuse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(sampleDir, "certferry-node-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	sch := compile(t, "certferry-node-failed.json")
	for _, tc := range []struct {
		name   string
		change func(ev, detail map[string]any)
	}{
		{"unknown detail field", func(_, d map[string]any) { d["passphrase"] = "x" }},
		{"missing name", func(_, d map[string]any) { delete(d, "name") }},
		{"hostile name", func(_, d map[string]any) { d["name"] = "Shop Web" }},
		{"unknown state", func(_, d map[string]any) { d["state"] = "installed" }},
		{"error too long", func(_, d map[string]any) { d["error"] = strings.Repeat("e", 257) }},
		{"other source", func(ev, _ map[string]any) { ev["source"] = "aws.acm" }},
		{"other detail-type", func(ev, _ map[string]any) { ev["detail-type"] = TypeDeploymentFinished }},
		{"time not a date-time", func(ev, _ map[string]any) { ev["time"] = "yesterday" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			tc.change(ev, ev["detail"].(map[string]any))
			b, _ := json.Marshal(ev)
			if err := validate(sch, b); err == nil {
				t.Fatal("the schema accepted it")
			}
		})
	}
}

// Every detail-type has a schema, a sample and a row here; no stray files.
func TestEveryDetailTypeHasSchemaAndSample(t *testing.T) {
	var rows []string
	for _, k := range kinds {
		rows = append(rows, k.detailType)
		for _, dir := range []string{schemaDir, sampleDir} {
			if _, err := os.Stat(filepath.Join(dir, k.file)); err != nil {
				t.Error(err)
			}
		}
	}
	if !slices.Equal(rows, DetailTypes) {
		t.Errorf("rows %v, DetailTypes %v", rows, DetailTypes)
	}
	schemas, _ := filepath.Glob(filepath.Join(schemaDir, "certferry-*.json"))
	samples, _ := filepath.Glob(filepath.Join(sampleDir, "certferry-*.json"))
	if len(schemas) != len(kinds) || len(samples) != len(kinds) {
		t.Errorf("%d schemas and %d samples for %d detail-types", len(schemas), len(samples), len(kinds))
	}
}
