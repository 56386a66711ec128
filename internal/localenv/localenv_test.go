package localenv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// `certferry local up` run outside the repository (the README runs it as
// `go run ./cmd/certferry` from the root) says where to run it, not just
// "no such file".
func TestDocumentOutsideTheRepositorySaysWhereToRun(t *testing.T) {
	_, err := ensureDocument(context.Background(), nil, filepath.Join(t.TempDir(), DocumentFile))
	if err == nil || !strings.Contains(err.Error(), "repository's root") {
		t.Fatalf("got %v, want the advice to run from the repository's root", err)
	}
}
