package awsmodel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The models come from the installed botocore; a directory without them
// is a clear error, never a silent pass.
func TestLoadFailsWithoutModels(t *testing.T) {
	_, err := loadFrom(t.TempDir(), "acm")
	if err == nil || !strings.Contains(err.Error(), "read model of acm") {
		t.Fatalf("err = %v", err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "acm", "2015-12-08"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFrom(dir, "acm"); err == nil || !strings.Contains(err.Error(), "no service-2.json") {
		t.Fatalf("err = %v", err)
	}
}

// Patterns are matched against the whole value, as Java's
// Matcher.matches() does.
func TestPatternSemantics(t *testing.T) {
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{`[a-z]+`, "abc", true},
		{`[a-z]+`, "abc1", false},
		{`\p{Print}+`, "step name", true},
		{`\p{Print}+`, "tab\there", false},
		{`[\p{Print}]+`, "a~b", true},
		{`^(?!\s*$).+`, "  ", false},
		{`^(?!\s*$).+`, " x", true},
		{`.+`, "a\rb", false},
		{`\u0041+`, "AAA", true},
		{`[\uD800\uDC00-\uDBFF\uDFFF]`, "😀", true},
		{`a++b`, "aab", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.value, func(t *testing.T) {
			m, err := CompilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(tt.value); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}
