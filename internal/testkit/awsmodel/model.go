// Package awsmodel checks AWS requests against AWS's published API models:
// botocore's data/<service>/<version>/service-2.json(.gz), read at test time
// from the botocore installed with the aws CLI (never copied into the
// repository). A request is valid when its operation's input shape accepts
// it: required members, string length (in characters) and pattern, enums,
// numeric ranges, list and map sizes, blob sizes, nested shapes, and no
// member the model does not have.
package awsmodel

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Model is one service's API model.
type Model struct {
	Service    string // botocore's folder name: acm, ssm, dynamodb…
	APIVersion string
	Metadata   Metadata
	Operations map[string]Operation
	Shapes     map[string]*Shape
	Path       string // the file it was read from
}

// Metadata is the part of a model's metadata the checker needs.
type Metadata struct {
	Protocol     string   `json:"protocol"`
	Protocols    []string `json:"protocols"`
	TargetPrefix string   `json:"targetPrefix"`
	JSONVersion  string   `json:"jsonVersion"`
	SigningName  string   `json:"signingName"`
	EndpointPfx  string   `json:"endpointPrefix"`
	APIVersion   string   `json:"apiVersion"`
}

// Operation is one API operation.
type Operation struct {
	Name string `json:"name"`
	HTTP struct {
		Method     string `json:"method"`
		RequestURI string `json:"requestUri"`
	} `json:"http"`
	Input *Ref `json:"input"`
}

// Ref is a reference to a shape with the serialization traits of the
// member (they override the shape's own).
type Ref struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
	QueryName    string `json:"queryName"`
	Flattened    bool   `json:"flattened"`
}

// Shape is one shape of a model.
type Shape struct {
	Type         string          `json:"type"`
	Required     []string        `json:"required"`
	Members      map[string]*Ref `json:"members"`
	Member       *Ref            `json:"member"`
	Key          *Ref            `json:"key"`
	Value        *Ref            `json:"value"`
	Min          *float64        `json:"min"`
	Max          *float64        `json:"max"`
	Pattern      string          `json:"pattern"`
	Enum         []string        `json:"enum"`
	Union        bool            `json:"union"`
	Document     bool            `json:"document"`
	Flattened    bool            `json:"flattened"`
	LocationName string          `json:"locationName"`
	Payload      string          `json:"payload"`
}

// Protocol returns the model's wire protocol (json, query, ec2, rest-xml,
// rest-json), preferring json where a service offers several.
func (m *Model) Protocol() string {
	for _, p := range m.Metadata.Protocols {
		if p == "json" {
			return p
		}
	}
	return m.Metadata.Protocol
}

// ErrNoBotocore says the models cannot be found; the tests that need them
// fail with it.
var ErrNoBotocore = errors.New("botocore (installed with the aws CLI) not found: the AWS API models are read from it; install it with pip install botocore (or run .ci/run, which does)")

var (
	dirOnce sync.Once
	dirPath string
	dirErr  error
)

// Dir returns botocore's data directory: $CERTFERRY_BOTOCORE_DATA, else
// the one of the botocore that python3 imports.
func Dir() (string, error) {
	dirOnce.Do(func() {
		if d := os.Getenv("CERTFERRY_BOTOCORE_DATA"); d != "" {
			dirPath = d
			return
		}
		for _, py := range []string{"python3", "python"} {
			p, err := exec.LookPath(py)
			if err != nil {
				continue
			}
			out, err := exec.Command(p, "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
			if err != nil {
				continue
			}
			d := filepath.Join(strings.TrimSpace(string(out)), "data")
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				dirPath = d
				return
			}
		}
		dirErr = ErrNoBotocore
	})
	return dirPath, dirErr
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Model{}
)

// Load reads the newest API version of service (botocore's folder name).
func Load(service string) (*Model, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if m, ok := cache[service]; ok {
		return m, nil
	}
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	m, err := loadFrom(dir, service)
	if err != nil {
		return nil, err
	}
	cache[service] = m
	return m, nil
}

// loadFrom reads the newest API version of service under botocore's data
// directory dir.
func loadFrom(dir, service string) (*Model, error) {
	versions, err := os.ReadDir(filepath.Join(dir, service))
	if err != nil {
		return nil, fmt.Errorf("read model of %s: %w", service, err)
	}
	var names []string
	for _, v := range versions {
		if v.IsDir() {
			names = append(names, v.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, v := range names {
		for _, f := range []string{"service-2.json", "service-2.json.gz"} {
			path := filepath.Join(dir, service, v, f)
			raw, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read model of %s: %w", service, err)
			}
			if strings.HasSuffix(f, ".gz") {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					return nil, fmt.Errorf("read model %s: %w", path, err)
				}
				if raw, err = io.ReadAll(zr); err != nil {
					return nil, fmt.Errorf("read model %s: %w", path, err)
				}
			}
			m := &Model{Service: service, APIVersion: v, Path: path}
			var doc struct {
				Metadata   Metadata             `json:"metadata"`
				Operations map[string]Operation `json:"operations"`
				Shapes     map[string]*Shape    `json:"shapes"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				return nil, fmt.Errorf("parse model %s: %w", path, err)
			}
			m.Metadata, m.Operations, m.Shapes = doc.Metadata, doc.Operations, doc.Shapes
			return m, nil
		}
	}
	return nil, fmt.Errorf("no service-2.json for %s under %s", service, filepath.Join(dir, service))
}

// Input returns the input shape of op.
func (m *Model) Input(op string) (*Shape, string, error) {
	o, ok := m.Operations[op]
	if !ok {
		return nil, "", fmt.Errorf("%s has no operation %s", m.Service, op)
	}
	if o.Input == nil {
		return &Shape{Type: "structure"}, "", nil
	}
	s, ok := m.Shapes[o.Input.Shape]
	if !ok {
		return nil, "", fmt.Errorf("%s %s: input shape %s missing", m.Service, op, o.Input.Shape)
	}
	return s, o.Input.Shape, nil
}

// Member returns the shape a member of structure s refers to, with the
// member's traits.
func (m *Model) shape(r *Ref) *Shape { return m.Shapes[r.Shape] }
