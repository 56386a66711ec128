// Package samtemplate keeps template.yaml's inline copy of the SSM document
// identical to ssm-documents/certferry-install.yaml. CloudFormation takes an
// SSM document's content inline only, so the template carries a copy between
// two marker lines; `make sync-template` rewrites it and a test fails when
// the two drift apart.
package samtemplate

import (
	"bytes"
	"errors"
	"strings"
)

// Marker lines around the inline document (leading spaces ignored).
const (
	BeginMarker = "# BEGIN ssm-documents/certferry-install.yaml (make sync-template; a test checks it)"
	EndMarker   = "# END ssm-documents/certferry-install.yaml"
	indent      = "        "
)

// SyncDocument returns template with the text between the markers replaced
// by doc, indented under the document's Content key.
func SyncDocument(template, doc []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(template), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case BeginMarker:
			begin = i
		case EndMarker:
			end = i
		}
	}
	if begin < 0 || end < begin {
		return nil, errors.New("template.yaml lacks the SSM document markers")
	}
	var b bytes.Buffer
	for _, l := range lines[:begin+1] {
		b.WriteString(l)
	}
	for _, l := range strings.SplitAfter(strings.TrimSuffix(string(doc), "\n"), "\n") {
		if strings.TrimSpace(l) == "---" {
			continue
		}
		if strings.TrimSpace(l) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString(indent + strings.TrimSuffix(l, "\n") + "\n")
	}
	for _, l := range lines[end:] {
		b.WriteString(l)
	}
	return b.Bytes(), nil
}
