package winstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
	"unicode/utf16"
)

// RunTimeout bounds one PowerShell run when the context has no sooner
// deadline.
const RunTimeout = 2 * time.Minute

// execRunner runs Windows PowerShell from System32 (never from PATH) with
// the script as -EncodedCommand.
type execRunner struct{}

// ErrNotWindows: PowerShell scripts run only on Windows.
var ErrNotWindows = errors.New("the Windows certificate store is reachable only on Windows")

func (execRunner) Run(ctx context.Context, script string, env []string, stdin []byte) ([]byte, []byte, error) {
	if runtime.GOOS != "windows" {
		return nil, nil, ErrNotWindows
	}
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	exe := filepath.Join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe")
	ctx, cancel := context.WithTimeout(ctx, RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
		"-EncodedCommand", encodeCommand(script))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// encodeCommand is -EncodedCommand's format: base64 of UTF-16LE.
func encodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}
