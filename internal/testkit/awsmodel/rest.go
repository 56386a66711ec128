package awsmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// restInput finds a REST operation (S3: the SDK names it in the x-id query
// parameter; otherwise by method and URI template) and rebuilds its input
// from the URI labels, query string and headers, and, for a rest-json
// service, the members of the JSON body (EventBridge Scheduler's
// CreateSchedule). XML bodies are not decoded (certferry sends none to a
// rest-xml service but S3 object bodies, which are blobs without a size
// limit in the model), nor is a body that is the operation's payload.
func restInput(m *Model, r *http.Request, body []byte) (string, map[string]any, error) {
	q := r.URL.Query()
	path := r.URL.EscapedPath()
	var op string
	var labels map[string]string
	if id := q.Get("x-id"); id != "" {
		o, ok := m.Operations[id]
		if !ok {
			return "", nil, fmt.Errorf("%s has no operation %s", m.Service, id)
		}
		l, ok := matchURI(o.HTTP.RequestURI, path, q)
		if !ok || o.HTTP.Method != r.Method {
			return "", nil, fmt.Errorf("%s %s does not match %s's %s %s", r.Method, path, id, o.HTTP.Method, o.HTTP.RequestURI)
		}
		op, labels = id, l
	} else {
		best, found := 0, false
		names := make([]string, 0, len(m.Operations))
		for n := range m.Operations {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			o := m.Operations[n]
			if o.HTTP.Method != r.Method {
				continue
			}
			l, ok := matchURI(o.HTTP.RequestURI, path, q)
			if !ok {
				continue
			}
			// The most specific template wins: most literal query keys, then
			// most literal path characters.
			score := strings.Count(o.HTTP.RequestURI, "&")*1000 + len(o.HTTP.RequestURI) - strings.Count(o.HTTP.RequestURI, "{")*10
			if strings.Contains(o.HTTP.RequestURI, "?") {
				score += 1000
			}
			if !found || score > best {
				best, op, labels, found = score, n, l, true
			}
		}
		if op == "" {
			return "", nil, fmt.Errorf("no %s operation for %s %s", m.Service, r.Method, path)
		}
	}
	in, _, err := m.Input(op)
	if err != nil {
		return "", nil, err
	}
	v := map[string]any{}
	for name, ref := range in.Members {
		loc := ref.LocationName
		if loc == "" {
			loc = name
		}
		switch ref.Location {
		case "uri":
			if s, ok := labels[loc]; ok {
				v[name] = s
			}
		case "querystring":
			if s, ok := q[loc]; ok {
				if m.shape(ref).Type == "list" {
					l := make([]any, len(s))
					for i, e := range s {
						l[i] = e
					}
					v[name] = l
				} else {
					v[name] = s[0]
				}
			}
		case "header":
			if s := r.Header.Values(loc); len(s) > 0 {
				v[name] = s[0]
			}
		}
	}
	if m.Protocol() == "rest-json" && in.Payload == "" && len(bytes.TrimSpace(body)) > 0 {
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return op, nil, fmt.Errorf("body of %s is not a JSON object: %v", op, err)
		}
		for k, x := range obj {
			if ref, ok := in.Members[k]; ok && ref.Location != "" {
				return op, nil, fmt.Errorf("body of %s carries %s, which the model places in the %s", op, k, ref.Location)
			}
			v[k] = x // a key the input shape lacks is reported as an unknown member
		}
	}
	return op, v, nil
}

// matchURI matches an escaped request path and query against a requestUri
// template ("/{Bucket}/{Key+}?list-type=2") and returns the labels.
func matchURI(tmpl, path string, q url.Values) (map[string]string, bool) {
	tpath, tquery, _ := strings.Cut(tmpl, "?")
	if tquery != "" {
		for _, kv := range strings.Split(tquery, "&") {
			k, want, hasValue := strings.Cut(kv, "=")
			if _, ok := q[k]; !ok {
				return nil, false
			}
			if hasValue && q.Get(k) != want {
				return nil, false
			}
		}
	}
	labels := map[string]string{}
	tsegs := strings.Split(strings.TrimPrefix(tpath, "/"), "/")
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if tpath == "/" {
		tsegs = nil
	}
	if path == "/" {
		segs = nil
	}
	for i, t := range tsegs {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "+}") {
			if i >= len(segs) {
				return nil, false
			}
			rest, err := url.PathUnescape(strings.Join(segs[i:], "/"))
			if err != nil {
				return nil, false
			}
			labels[t[1:len(t)-2]] = rest
			return labels, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			s, err := url.PathUnescape(segs[i])
			if err != nil || s == "" {
				return nil, false
			}
			labels[t[1:len(t)-1]] = s
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return labels, len(segs) == len(tsegs)
}
