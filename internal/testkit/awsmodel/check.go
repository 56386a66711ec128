package awsmodel

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Violation is one constraint of the model a request breaks.
type Violation struct {
	Service    string
	Operation  string
	Member     string // path from the input shape: "Targets.1.Key"
	Constraint string // required, length, pattern, enum, range, size, unknown, type, union, operation
	Message    string // as AWS words it; never the value itself (it may be a secret)
	Code       string // the error code AWS answers with; "" = the protocol's validation error
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s", v.Service, v.Operation, v.Message)
}

// Validate checks value (decoded from the wire: map[string]any for
// structures and maps, []any for lists, string / json.Number / bool for
// scalars, blobs base64-encoded) against shape s of m. path names the value.
func (m *Model) Validate(s *Shape, value any, path string) []Violation {
	var out []Violation
	m.validate(s, value, path, &out)
	return out
}

func (m *Model) validate(s *Shape, value any, path string, out *[]Violation) {
	add := func(constraint, format string, a ...any) {
		*out = append(*out, Violation{Service: m.Service, Member: path, Constraint: constraint,
			Message: fmt.Sprintf("Value at '%s' failed to satisfy constraint: ", path) + fmt.Sprintf(format, a...)})
	}
	if s == nil || value == nil || s.Document {
		return
	}
	switch s.Type {
	case "structure":
		obj, ok := value.(map[string]any)
		if !ok {
			add("type", "Member must be a structure")
			return
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				*out = append(*out, Violation{Service: m.Service, Member: join(path, r), Constraint: "required",
					Message: fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", join(path, r))})
			}
		}
		names := make([]string, 0, len(obj))
		for k := range obj {
			names = append(names, k)
		}
		sort.Strings(names)
		set := 0
		for _, k := range names {
			ref, ok := s.Members[k]
			if !ok {
				*out = append(*out, Violation{Service: m.Service, Member: join(path, k), Constraint: "unknown",
					Message: fmt.Sprintf("'%s' is not a member of the input shape (unknown member)", join(path, k))})
				continue
			}
			if obj[k] != nil {
				set++
			}
			m.validate(m.shape(ref), obj[k], join(path, k), out)
		}
		if s.Union && set != 1 {
			add("union", "Member must have exactly one member set (union), has %d", set)
		}
	case "list":
		list, ok := value.([]any)
		if !ok {
			add("type", "Member must be a list")
			return
		}
		m.size(s, len(list), "length", add)
		for i, e := range list {
			m.validate(m.shape(s.Member), e, fmt.Sprintf("%s.%d.member", path, i+1), out)
		}
	case "map":
		obj, ok := value.(map[string]any)
		if !ok {
			add("type", "Member must be a map")
			return
		}
		m.size(s, len(obj), "length", add)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.validate(m.shape(s.Key), k, fmt.Sprintf("%s.%s(key)", path, k), out)
			m.validate(m.shape(s.Value), obj[k], fmt.Sprintf("%s.%s", path, k), out)
		}
	case "string":
		str, ok := value.(string)
		if !ok {
			add("type", "Member must be a string")
			return
		}
		// AWS counts characters, not bytes.
		n := utf8.RuneCountInString(str)
		m.size(s, n, "length", add)
		if len(s.Enum) > 0 && !contains(s.Enum, str) {
			add("enum", "Member must satisfy enum value set: %v", s.Enum)
		}
		if s.Pattern != "" {
			p, err := CompilePattern(s.Pattern)
			switch {
			case err != nil:
				add("pattern", "pattern %q of the model does not compile: %v", s.Pattern, err)
			case !p.Match(str):
				add("pattern", "Member must satisfy regular expression pattern: %s", s.Pattern)
			}
		}
	case "blob":
		str, ok := value.(string)
		if !ok {
			add("type", "Member must be a blob (base64)")
			return
		}
		raw, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			add("type", "Member must be base64-encoded")
			return
		}
		m.size(s, len(raw), "length", add)
	case "integer", "long", "float", "double":
		var f float64
		var err error
		switch v := value.(type) {
		case json.Number:
			f, err = v.Float64()
		case string:
			f, err = strconv.ParseFloat(v, 64)
		case float64:
			f = v
		default:
			err = fmt.Errorf("%T", v)
		}
		if err != nil {
			add("type", "Member must be a number")
			return
		}
		if s.Min != nil && f < *s.Min {
			add("range", "Member must have value greater than or equal to %v", *s.Min)
		}
		if s.Max != nil && f > *s.Max {
			add("range", "Member must have value less than or equal to %v", *s.Max)
		}
	case "boolean":
		switch v := value.(type) {
		case bool:
		case string:
			if v != "true" && v != "false" {
				add("type", "Member must be a boolean")
			}
		default:
			add("type", "Member must be a boolean")
		}
	}
}

func (m *Model) size(s *Shape, n int, what string, add func(string, string, ...any)) {
	kind := "size"
	if s.Type == "string" || s.Type == "blob" {
		kind = "length"
	}
	if s.Min != nil && float64(n) < *s.Min {
		add(kind, "Member must have %s greater than or equal to %v", what, *s.Min)
	}
	if s.Max != nil && float64(n) > *s.Max {
		add(kind, "Member must have %s less than or equal to %v", what, *s.Max)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
