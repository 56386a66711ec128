package api_test

// Every onboarding API field that reaches an AWS request has a row here,
// naming the AWS members it reaches. For each row, boundary and odd values
// are put in a request body; whatever the API accepts (ParseOnboard, then
// the spec's defaults and validation, as the onboarding path runs them) is
// sent by the production code (fleet.Send, certs.Describe/Export,
// bundle.Put, inventory.CreateCert) through the real SDK clients to a
// server that checks each request against AWS's API model
// (internal/testkit/awsmodel) and the constraints AWS documents outside the
// model (the SSM document's allowedPattern, secret name characters,
// DynamoDB key sizes). So the API refuses with 400, writing nothing, what
// AWS would refuse later. A new spec field or SendCommand parameter without
// a row fails the test. The model check itself (TestAPIFieldsReachAWSWithinModel)
// is in awsfields_integration_test.go: it needs botocore's models.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/spec"
)

const testARN = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"

// fieldRow is one API field and where it reaches AWS.
type fieldRow struct {
	field   string   // as spec.Spec's JSON names it ("linux.certPath", "targets[].key")
	aliases []string // the same field in the AWS sample's body shape
	reaches []string // AWS members, for the reader
	params  []string // SendCommand Parameters it becomes
	values  []any    // candidate values (besides the generated ones)
	gen     func() []any
	set     func(body map[string]any, v any)
}

func linuxSet(key string) func(map[string]any, any) {
	return func(b map[string]any, v any) { b["linux"].(map[string]any)[key] = v }
}

func windowsSet(key string) func(map[string]any, any) {
	return func(b map[string]any, v any) { b["windows"].(map[string]any)[key] = v }
}

func rows() []fieldRow {
	return []fieldRow{
		{field: "name", aliases: []string{"CertName"},
			reaches: []string{"ssm:SendCommand Parameters.CertName (document allowedPattern)", "ssm:SendCommand Parameters.SecretId (prefix + name)",
				"ssm:SendCommand Comment (≤ 100)", "secretsmanager:CreateSecret Name (1–512; documented characters /_+=.@-)", "secretsmanager:PutSecretValue SecretId (1–2048)",
				"secretsmanager:CreateSecret Tags[certferry:name].Value (0–256)", "dynamodb:PutItem Item.PK (partition key ≤ 2048 bytes)"},
			params: []string{"CertName", "SecretId"},
			gen:    func() []any { return strs(variants("shop-web", 0, 600)) },
			set:    func(b map[string]any, v any) { b["name"] = v }},
		{field: "certificateArn", aliases: []string{"CertificateArn"},
			reaches: []string{"acm:DescribeCertificate CertificateArn (20–2048, pattern)", "acm:ExportCertificate CertificateArn (20–2048, pattern)",
				"secretsmanager:CreateSecret Tags[certferry:certificateArn].Value (0–256)", "dynamodb:PutItem Item.certificateArn (GSI partition key ≤ 2048 bytes)"},
			values: []any{testARN, "arn:aws-cn:acm:cn-north-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
				"arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
				"arn:aws-iso-b:acm:us-isob-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
				"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012/x",
				"arn:aws:acm:us-east-1:1234567890123:certificate/12345678-1234-1234-1234-123456789012"},
			gen: func() []any { return strs(variants(testARN, 0, 2100)) },
			set: func(b map[string]any, v any) { b["certificateArn"] = v }},
		{field: "targets[].key", aliases: []string{"TargetTagKey"},
			reaches: []string{"ssm:SendCommand Targets.Key (1–163, pattern; InstanceIds / tag:<key> / tag-key)"},
			values:  []any{"tag:env", "tag-key", "InstanceIds", "tag:" + strings.Repeat("k", 128), "tag:" + strings.Repeat("k", 129), "resource-groups:Name"},
			gen: func() []any {
				var out []any
				for _, v := range variants("env", 0, 200) {
					out = append(out, "tag:"+v)
				}
				return out
			},
			set: func(b map[string]any, v any) {
				b["targets"] = []any{map[string]any{"key": v, "values": []any{"prod"}}}
			}},
		{field: "targets[].values", aliases: []string{"TargetTagValue"},
			reaches: []string{"ssm:SendCommand Targets.Values (≤ 50 values)", "ssm:SendCommand InstanceIds (≤ 50, pattern (^i-(\\w{8}|\\w{17})$)|(^mi-\\w{17}$))"},
			gen: func() []any {
				var out []any
				for _, v := range variants("prod", 0, 300) {
					out = append(out, map[string]any{"key": "tag:env", "values": []any{v}})
					out = append(out, map[string]any{"key": "tag-key", "values": []any{v}})
				}
				for _, prefix := range []string{"i-", "mi-"} {
					for n := 6; n <= 18; n++ {
						for _, digit := range []string{"0", "f", "F", "g"} {
							out = append(out, map[string]any{"key": "InstanceIds", "values": []any{prefix + strings.Repeat(digit, n)}})
						}
					}
				}
				for _, n := range []int{0, 1, 50, 51} {
					vals := make([]any, n)
					for i := range vals {
						vals[i] = fmt.Sprintf("v%d", i)
					}
					out = append(out, map[string]any{"key": "tag:env", "values": vals})
				}
				return out
			},
			set: func(b map[string]any, v any) { b["targets"] = []any{v} }},
		{field: "linux.certPath", reaches: []string{"ssm:SendCommand Parameters.CertPath (document allowedPattern)", "dynamodb:PutItem Item (≤ 400 KB)"},
			params: []string{"CertPath"}, gen: func() []any { return pathVariants("/etc/ssl/certs/shop.pem") }, set: linuxSet("certPath")},
		{field: "linux.keyPath", reaches: []string{"ssm:SendCommand Parameters.KeyPath (document allowedPattern)", "dynamodb:PutItem Item (≤ 400 KB)"},
			params: []string{"KeyPath"}, gen: func() []any { return pathVariants("/etc/ssl/private/shop.key") }, set: linuxSet("keyPath")},
		{field: "linux.reloadService", reaches: []string{"ssm:SendCommand Parameters.ReloadService (document allowedPattern)"},
			params: []string{"ReloadService"}, gen: func() []any { return strs(variants("nginx", 0, 100)) }, set: linuxSet("reloadService")},
		{field: "linux.verifyPort", reaches: []string{"ssm:SendCommand Parameters.VerifyPort (document allowedPattern)"},
			params: []string{"VerifyPort"}, values: []any{-1, 0, 1, 443, 65535, 65536, 1e10, 1.5, "443"}, set: linuxSet("verifyPort")},
		{field: "linux.serverName", reaches: []string{"ssm:SendCommand Parameters.ServerName (document allowedPattern)"},
			params: []string{"ServerName"}, gen: func() []any { return strs(variants("shop.example.com", 0, 300)) }, set: linuxSet("serverName")},
		{field: "linux.format", reaches: []string{"ssm:SendCommand Parameters.Format (document allowedPattern)"},
			params: []string{"Format"}, values: []any{"pem", "split", "combined", "pkcs12", "jks", "PEM", "der"},
			gen: func() []any { return strs(variants("pem", 0, 100)) },
			set: func(b map[string]any, v any) {
				l := b["linux"].(map[string]any)
				l["format"] = v
				switch v {
				case "split":
					l["chainPath"] = "/etc/ssl/certs/shop-web.chain.pem"
				case "pkcs12", "jks":
					l["keystorePath"] = "/etc/ssl/private/shop-web.keystore"
					delete(l, "certPath") // a keystore format takes no PEM paths
					delete(l, "keyPath")
				}
			}},
		{field: "linux.chainPath", reaches: []string{"ssm:SendCommand Parameters.ChainPath (document allowedPattern)"},
			params: []string{"ChainPath"}, gen: func() []any { return pathVariants("/etc/ssl/certs/shop.chain.pem") },
			set: func(b map[string]any, v any) {
				l := b["linux"].(map[string]any)
				l["format"], l["chainPath"] = "split", v
			}},
		{field: "linux.keystorePath", reaches: []string{"ssm:SendCommand Parameters.KeystorePath (document allowedPattern)"},
			params: []string{"KeystorePath"}, gen: func() []any { return pathVariants("/etc/ssl/private/shop.jks") },
			set: func(b map[string]any, v any) {
				l := b["linux"].(map[string]any)
				l["format"], l["keystorePath"] = "jks", v
				delete(l, "certPath") // a keystore format takes no PEM paths
				delete(l, "keyPath")
			}},
		{field: "linux.owner", reaches: []string{"ssm:SendCommand Parameters.Owner (document allowedPattern)"},
			params: []string{"Owner"}, values: []any{"root", "www-data", "0", "33", "4294967295", "_apt"},
			gen: func() []any { return strs(variants("www-data", 0, 100)) }, set: linuxSet("owner")},
		{field: "linux.group", reaches: []string{"ssm:SendCommand Parameters.Group (document allowedPattern)"},
			params: []string{"Group"}, values: []any{"root", "ssl-cert", "0", "33"},
			gen: func() []any { return strs(variants("ssl-cert", 0, 100)) }, set: linuxSet("group")},
		{field: "linux.certMode", reaches: []string{"ssm:SendCommand Parameters.CertMode (document allowedPattern)"},
			params: []string{"CertMode"}, values: []any{"0644", "644", "0444", "0777", "0888", "1777", "06444", 644, ""},
			set: linuxSet("certMode")},
		{field: "linux.keyMode", reaches: []string{"ssm:SendCommand Parameters.KeyMode (document allowedPattern)"},
			params: []string{"KeyMode"}, values: []any{"0600", "600", "0640", "0400", "0800", "4600", 600, ""},
			set: linuxSet("keyMode")},
		{field: "linux.verifyAddress", reaches: []string{"ssm:SendCommand Parameters.VerifyAddress (document allowedPattern)"},
			params: []string{"VerifyAddress"}, values: []any{"127.0.0.1", "::1", "2001:db8::1", "[::1]", "fe80::1%eth0", "10.0.0.256", "localhost"},
			gen: func() []any { return strs(variants("shop.example.com", 0, 300)) }, set: linuxSet("verifyAddress")},
		{field: "linux.starttls", reaches: []string{"ssm:SendCommand Parameters.Starttls (document allowedPattern)"},
			params: []string{"Starttls"}, values: []any{"smtp", "imap", "pop3", "", "SMTP", "ftp", "smtp "},
			set: linuxSet("starttls")},
		{field: "windows.store", reaches: []string{"ssm:SendCommand Parameters.CertStore (document allowedPattern)"},
			params: []string{"CertStore"}, gen: func() []any { return strs(variants(`LocalMachine\My`, 0, 100)) }, set: windowsSet("store")},
		{field: "windows.iisSite", reaches: []string{"ssm:SendCommand Parameters.IisSite (document allowedPattern)"},
			params: []string{"IisSite"}, gen: func() []any { return strs(variants("Default Web Site", 0, 200)) }, set: windowsSet("iisSite")},

		// Rollout and lifecycle options (issue 14): stored with the spec in
		// the inventory; the stop alarm also reaches SendCommand.
		{field: "rollout.waves", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{[]any{"1", "25%", "100%"}, []any{"100%"}, []any{"10000", "100%"}, []any{"10001", "100%"}, []any{"0", "100%"}, []any{"1", "50%"},
				[]any{"1", "2", "3", "4", "5", "6", "7", "8", "9", "100%"}, []any{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "100%"},
				[]any{1, 100}, "1,100%", []any{}},
			gen: func() []any {
				var out []any
				for _, v := range variants("25%", 0, 300) {
					out = append(out, []any{v, "100%"})
				}
				return out
			},
			set: func(b map[string]any, v any) { b["rollout"] = map[string]any{"waves": v} }},
		{field: "rollout.pauseMinutes", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{-1, 0, 1, 10, 1440, 1441, 1e10, 1.5, "10"},
			set: func(b map[string]any, v any) {
				b["rollout"] = map[string]any{"waves": []any{"1", "100%"}, "pauseMinutes": v}
			}},
		{field: "rollout.stopAlarm", reaches: []string{"cloudwatch:DescribeAlarms AlarmNames[] (1–255)", "ssm:SendCommand AlarmConfiguration.Alarms[].Name (1–255, pattern ^(?!\\s*$).+)", "dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{"shop-5xx", "shop 5xx / p99 > 2s", " ", strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("é", 255)},
			gen:    func() []any { return strs(variants("shop-5xx", 0, 300)) },
			set:    func(b map[string]any, v any) { b["rollout"] = map[string]any{"stopAlarm": v} }},
		{field: "maintenanceWindows[].days", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{[]any{"Sat", "Sun"}, []any{"sat"}, []any{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}, []any{"Sat", "Sat"}, []any{}, []any{"Saturday"}, "Sat"},
			gen: func() []any {
				var out []any
				for _, v := range variants("Sat", 0, 100) {
					out = append(out, []any{v})
				}
				return out
			},
			set: windowField("days")},
		{field: "maintenanceWindows[].start", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{"00:00", "02:00", "23:59", "24:00", "2:00", "02:60", 200},
			gen:    func() []any { return strs(variants("02:00", 0, 100)) }, set: windowField("start")},
		{field: "maintenanceWindows[].end", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{"00:00", "05:00", "01:00", "02:00", "23:59", "24:00"},
			gen:    func() []any { return strs(variants("05:00", 0, 100)) }, set: windowField("end")},
		{field: "maintenanceWindows[].timezone", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{"Europe/Berlin", "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "Local", "Europe/Atlantis", "../etc/passwd", "+02:00"},
			gen:    func() []any { return strs(variants("Europe/Berlin", 0, 300)) }, set: windowField("timezone")},
		{field: "safetyMarginDays", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{-1, 0, 1, 7, 60, 61, 1e10, 1.5, "7"},
			set:    func(b map[string]any, v any) { b["safetyMarginDays"] = v }},
		{field: "approval", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{"", "required", "Required", "none", true},
			gen:    func() []any { return strs(variants("required", 0, 100)) },
			set:    func(b map[string]any, v any) { b["approval"] = v }},
		{field: "probes", reaches: []string{"dynamodb:PutItem Item (≤ 400 KB)"},
			values: []any{[]any{"shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com", "10.0.0.5:443/sni=x"}, []any{}, "shop.example.com:443",
				[]any{"2001:db8::1:443"}, []any{"[fe80::1%eth0]:443"}, []any{"shop.example.com:0"}, []any{"a:1", "a:1"}},
			gen: func() []any {
				var out []any
				for _, v := range variants("shop.example.com:443", 0, 700) {
					out = append(out, []any{v})
				}
				for _, v := range variants("shop.example.com", 0, 300) {
					out = append(out, []any{"10.0.0.5:443/sni=" + v})
				}
				return out
			},
			set: func(b map[string]any, v any) { b["probes"] = v }},
	}
}

// windowField sets one field of a valid maintenance window.
func windowField(key string) func(map[string]any, any) {
	return func(b map[string]any, v any) {
		w := map[string]any{"days": []any{"Sat", "Sun"}, "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin"}
		w[key] = v
		b["maintenanceWindows"] = []any{w}
	}
}

// derivedParams are SendCommand parameters that no API field sets: they
// come from the stack (AllowedPrefixes: the AllowedPathPrefixes parameter,
// checked by internal/samtemplate) and the exported certificate, checked
// all the same.
var derivedParams = []string{"ExpectedFingerprint", "Region", "AllowedPrefixes"}

// oddRunes are characters an API grammar might let through that AWS
// refuses somewhere.
var oddRunes = []string{" ", "+", "/", ".", "..", "_", "-", "@", "=", ":", ",", "é", "中", "😀", "\t", "\n", "\r", "%", "#", "*", "~",
	"A", "Z", "0", "9", `\`, "'", `"`, "$", "(", ")", "&", "|", ";", "<", "!", "?", "[", "{", "\x00", "\u00a0", "\u2028", "\u200b"}

// variants returns base with each odd rune at its start, middle and end,
// alone, and long runs of base's own characters up to maxLen.
func variants(base string, _ int, maxLen int) []string {
	out := []string{base, ""}
	mid := len(base) / 2
	for _, r := range oddRunes {
		out = append(out, r, r+base, base+r, base[:mid]+r+base[mid:])
	}
	for _, n := range []int{1, 2, 3, 7, 8, 17, 19, 20, 62, 63, 64, 65, 100, 101, 127, 128, 129, 163, 164, 250, 251, 252, 253, 254, 255, 256, 257, 449, 450, 511, 512, 513, 1024, 1025, 2048, 2049} {
		if n > maxLen {
			break
		}
		for _, unit := range []string{"a", "a.", "a-", "é"} {
			s := strings.Repeat(unit, n)
			out = append(out, s[:min(len(s), n*len(unit))])
		}
		if n > len(base) {
			out = append(out, base+strings.Repeat("a", n-len(base)))
		}
	}
	return out
}

func pathVariants(base string) []any {
	out := strs(variants(base, 0, 1100))
	for _, seg := range []string{"a", ".a", "..", ".", "a..b", "-a", "_a", "a b", "é"} {
		out = append(out, "/"+seg, "/etc/"+seg+"/x.pem")
	}
	return out
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// TestEveryFieldHasARow fails when spec.Spec grows a field, or SendCommand
// a parameter, that reaches AWS without a row above.
func TestEveryFieldHasARow(t *testing.T) {
	have := map[string]bool{}
	params := map[string]bool{}
	for _, r := range rows() {
		have[r.field] = true
		for _, p := range r.params {
			params[p] = true
		}
	}
	for _, f := range leafFields(reflect.TypeOf(spec.Spec{}), "") {
		if !have[f] {
			t.Errorf("spec.Spec field %s reaches AWS (SendCommand, the secret, the inventory) but has no row in awsfields_test.go", f)
		}
	}
	sp := spec.Spec{Name: "x"}
	sp.ApplyDefaults()
	for p := range fleet.Parameters(fleet.Install{Spec: sp}) {
		if !params[p] && !slices.Contains(derivedParams, p) {
			t.Errorf("SendCommand parameter %s has no row in awsfields_test.go", p)
		}
	}
}

// leafFields lists the JSON paths of a struct's leaf fields.
func leafFields(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, leafFields(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, leafFields(ft.Elem(), path+"[].")...)
		default:
			out = append(out, path)
		}
	}
	return out
}
