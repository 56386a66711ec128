package awsmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// signingNames maps a SigV4 credential scope's service to botocore's
// folder, for the services certferry and its rig call.
var signingNames = map[string]string{
	"acm": "acm", "acm-pca": "acm-pca", "secretsmanager": "secretsmanager", "dynamodb": "dynamodb",
	"ssm": "ssm", "sqs": "sqs", "sns": "sns", "ec2": "ec2", "s3": "s3", "kms": "kms", "sts": "sts",
	"events": "events", "lambda": "lambda", "iam": "iam", "monitoring": "cloudwatch", "logs": "logs",
	"scheduler":      "scheduler",
	"cloudformation": "cloudformation",
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

// Request is an AWS request as the checker understood it.
type Request struct {
	Service   string
	Operation string
	Input     any // decoded input (map[string]any)
}

// Op is "service.Operation".
func (r Request) Op() string { return r.Service + "." + r.Operation }

// Protocol returns how a violation of r is answered: "json", "query",
// "ec2", "rest-xml" or "rest-json".
func (r Request) Protocol() string {
	m, err := Load(r.Service)
	if err != nil {
		return "json"
	}
	return m.Protocol()
}

// Check maps an HTTP request (with its body) to its service and operation
// and validates it against the operation's input shape. A request the
// checker cannot map (unsigned, unknown service or operation, a body it
// cannot decode) is itself a violation: nothing goes to the emulator
// unchecked.
func Check(r *http.Request, body []byte) (Request, []Violation) {
	req := Request{}
	bad := func(constraint, format string, a ...any) (Request, []Violation) {
		return req, []Violation{{Service: req.Service, Operation: req.Operation, Constraint: constraint, Message: fmt.Sprintf(format, a...)}}
	}
	sm := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if sm == nil {
		if q := r.URL.Query(); q.Get("X-Amz-Credential") != "" {
			sm = scopeRE.FindStringSubmatch("Credential=" + q.Get("X-Amz-Credential"))
		}
	}
	if sm == nil {
		return bad("operation", "unsigned request %s %s: AWS refuses it (MissingAuthenticationToken)", r.Method, r.URL.Path)
	}
	svc, ok := signingNames[sm[1]]
	if !ok {
		return bad("operation", "request signed for service %q, which the checker has no model for", sm[1])
	}
	req.Service = svc
	m, err := Load(svc)
	if err != nil {
		return bad("operation", "load model: %v", err)
	}
	var vs []Violation
	switch m.Protocol() {
	case "json":
		target := r.Header.Get("X-Amz-Target")
		prefix, op, ok := strings.Cut(target, ".")
		if !ok || prefix != m.Metadata.TargetPrefix {
			return bad("operation", "X-Amz-Target %q is not an operation of %s (target prefix %s)", target, svc, m.Metadata.TargetPrefix)
		}
		req.Operation = op
		in, _, err := m.Input(op)
		if err != nil {
			return bad("operation", "%v", err)
		}
		var v any = map[string]any{}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				return bad("type", "body of %s is not JSON: %v", op, err)
			}
		}
		req.Input = v
		vs = m.Validate(in, v, "")
	case "query", "ec2":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return bad("type", "body is not a form: %v", err)
		}
		for k, v := range r.URL.Query() {
			form[k] = append(form[k], v...)
		}
		op := form.Get("Action")
		req.Operation = op
		in, _, err := m.Input(op)
		if err != nil {
			return bad("operation", "%v", err)
		}
		d := &queryDecoder{m: m, form: form, used: map[string]bool{"Action": true, "Version": true}, ec2: m.Protocol() == "ec2"}
		v := d.structure(in, "")
		req.Input = v
		vs = m.Validate(in, v, "")
		var unknown []string
		for k := range form {
			if !d.used[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			vs = append(vs, Violation{Service: svc, Member: k, Constraint: "unknown", Message: fmt.Sprintf("'%s' is not a member of the input shape (unknown member)", k)})
		}
	case "rest-xml", "rest-json":
		op, v, err := restInput(m, r, body)
		if err != nil {
			return bad("operation", "%v", err)
		}
		req.Operation = op
		in, _, _ := m.Input(op)
		req.Input = v
		vs = m.Validate(in, v, "")
	default:
		return bad("operation", "protocol %s of %s not supported by the checker", m.Protocol(), svc)
	}
	for i := range vs {
		vs[i].Operation = req.Operation
		vs[i].Service = svc
	}
	return req, append(vs, documented(req)...)
}

// queryDecoder rebuilds an input value from the query protocol's flattened
// form (botocore's QuerySerializer and EC2Serializer, in reverse).
type queryDecoder struct {
	m    *Model
	form url.Values
	used map[string]bool
	ec2  bool
}

func (d *queryDecoder) has(prefix string) bool {
	if _, ok := d.form[prefix]; ok {
		return true
	}
	for k := range d.form {
		if strings.HasPrefix(k, prefix+".") {
			return true
		}
	}
	return false
}

func (d *queryDecoder) name(memberName string, ref *Ref) string {
	if d.ec2 {
		if ref.QueryName != "" {
			return ref.QueryName
		}
		if ref.LocationName != "" {
			return strings.ToUpper(ref.LocationName[:1]) + ref.LocationName[1:]
		}
		return memberName
	}
	if ref.LocationName != "" {
		return ref.LocationName
	}
	return memberName
}

func (d *queryDecoder) value(s *Shape, ref *Ref, prefix string) any {
	switch s.Type {
	case "structure":
		return d.structure(s, prefix)
	case "list":
		var out []any
		if v, ok := d.form[prefix]; ok && len(v) == 1 && v[0] == "" {
			d.used[prefix] = true
			return []any{}
		}
		flat := d.ec2 || s.Flattened || (ref != nil && ref.Flattened)
		base := prefix
		if !flat {
			name := "member"
			if s.Member.LocationName != "" {
				name = s.Member.LocationName
			}
			base = prefix + "." + name
		} else if !d.ec2 && s.Member.LocationName != "" {
			parts := strings.Split(prefix, ".")
			parts[len(parts)-1] = s.Member.LocationName
			base = strings.Join(parts, ".")
		}
		for i := 1; ; i++ {
			p := fmt.Sprintf("%s.%d", base, i)
			if !d.has(p) {
				break
			}
			out = append(out, d.value(d.m.shape(s.Member), s.Member, p))
		}
		return out
	case "map":
		out := map[string]any{}
		flat := s.Flattened || (ref != nil && ref.Flattened)
		base := prefix + ".entry"
		if flat {
			base = prefix
		}
		kn, vn := "key", "value"
		if s.Key.LocationName != "" {
			kn = s.Key.LocationName
		}
		if s.Value.LocationName != "" {
			vn = s.Value.LocationName
		}
		for i := 1; ; i++ {
			p := fmt.Sprintf("%s.%d", base, i)
			if !d.has(p) {
				break
			}
			k, _ := d.value(d.m.shape(s.Key), s.Key, p+"."+kn).(string)
			out[k] = d.value(d.m.shape(s.Value), s.Value, p+"."+vn)
		}
		return out
	default:
		d.used[prefix] = true
		return d.form.Get(prefix)
	}
}

func (d *queryDecoder) structure(s *Shape, prefix string) map[string]any {
	out := map[string]any{}
	for name, ref := range s.Members {
		p := d.name(name, ref)
		if prefix != "" {
			p = prefix + "." + p
		}
		if !d.has(p) {
			continue
		}
		out[name] = d.value(d.m.shape(ref), ref, p)
	}
	return out
}
