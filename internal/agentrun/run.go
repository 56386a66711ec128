package agentrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Step statuses, as SSM reports them per plugin.
const (
	StatusSuccess  = "Success"
	StatusFailed   = "Failed"
	StatusTimedOut = "TimedOut"
	StatusSkipped  = "Skipped"
)

// Timeouts of aws:runShellScript (aws/amazon-ssm-agent agent/plugins/pluginutil:
// timeoutSeconds outside 5..172800 falls back to 3600) and the exit code the
// agent reports for a step it killed (appconfig.CommandStoppedPreemptivelyExitCode).
const (
	defaultTimeout  = 3600
	minTimeout      = 5
	maxTimeout      = 172800
	KilledExitCode  = 137
	downloadTimeout = 10 * time.Minute
)

// ObjectGetter is the S3 subset aws:downloadContent needs.
type ObjectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ ObjectGetter = (*s3.Client)(nil)

// Agent plays SSM Agent on this machine.
type Agent struct {
	// Root holds one directory per command (the agent's orchestration
	// directory); empty: a new temporary directory per run.
	Root string
	// Platform is the platformType preconditions compare with ("Linux").
	Platform string
	// InstanceID and Region become AWS_SSM_INSTANCE_ID and AWS_SSM_REGION_NAME.
	InstanceID, Region string
	// Env is added to this process's environment for every script (the
	// agent's own environment reaches its scripts too).
	Env []string
	// S3 serves aws:downloadContent.
	S3 ObjectGetter
	// Legacy plays an agent older than 3.3.2746.0: no SSM_<Name> variables,
	// every {{Name}} substituted as text, also inside scripts.
	Legacy bool
	// Stdout and Stderr receive each step's output as it runs (may be nil).
	Stdout, Stderr io.Writer
}

// StepResult is one plugin's outcome.
type StepResult struct {
	Name, Action, Status string
	ExitCode             int
	Stdout, Stderr       string
}

// Result is one command's outcome on this machine.
type Result struct {
	CommandID string
	Dir       string // the command's orchestration directory
	Steps     []StepResult
	// ExitCode is the exit code of the last step that did not succeed (0
	// when every step that ran succeeded): the code agent-run exits with.
	ExitCode int
}

// Step returns the result of the step called name.
func (r *Result) Step(name string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// Run resolves params as SendCommand would and runs the document's steps.
// Like SSM Agent with the default onFailure, a failed step does not stop the
// next ones; onFailure: exit (or exit code 168/169) does.
func (a *Agent) Run(ctx context.Context, d *Document, params map[string]string) (*Result, error) {
	values, err := d.Resolve(params)
	if err != nil {
		return nil, err
	}
	root := a.Root
	if root == "" {
		if root, err = os.MkdirTemp("", "certferry-agent-run-"); err != nil {
			return nil, fmt.Errorf("create agent directory: %w", err)
		}
	}
	res := &Result{CommandID: newCommandID()}
	res.Dir = filepath.Join(root, res.CommandID)
	if err := os.MkdirAll(res.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create command directory: %w", err)
	}
	stop := false
	for _, step := range d.MainSteps {
		sr := StepResult{Name: step.Name, Action: step.Action}
		switch {
		case stop:
			sr.Status = StatusSkipped
		case step.Platform() != "" && step.Platform() != a.Platform:
			sr.Status = StatusSkipped
		default:
			a.logf("agent-run: step %s (%s)\n", step.Name, step.Action)
			sr = a.runStep(ctx, d, res, step, values)
			a.logf("agent-run: step %s: %s, exit %d\n", step.Name, sr.Status, sr.ExitCode)
			if sr.Status != StatusSuccess {
				res.ExitCode = sr.ExitCode
				if step.OnFailure == "exit" || step.OnFailure == "successAndExit" {
					stop = true
				}
			}
			if sr.ExitCode == 168 || sr.ExitCode == 169 {
				stop = true
			}
		}
		res.Steps = append(res.Steps, sr)
	}
	return res, nil
}

func (a *Agent) runStep(ctx context.Context, d *Document, res *Result, step Step, values map[string]string) StepResult {
	sr := StepResult{Name: step.Name, Action: step.Action, Status: StatusFailed, ExitCode: 1}
	var err error
	switch step.Action {
	case "aws:runShellScript":
		return a.runShellScript(ctx, d, res, step, values)
	case "aws:downloadContent":
		var msg string
		msg, err = a.downloadContent(ctx, res, step, a.inputs(d, step, values))
		if err == nil {
			sr.Status, sr.ExitCode, sr.Stdout = StatusSuccess, 0, msg+"\n"
			a.write(a.Stdout, sr.Stdout)
		}
	default:
		err = fmt.Errorf("plugin %s is not supported by agent-run on %s", step.Action, a.Platform)
	}
	if err != nil {
		sr.Stderr = err.Error() + "\n"
		a.write(a.Stderr, sr.Stderr)
	}
	return sr
}

// runShellScript writes the step's commands to <command>/<step>/_script.sh
// (mode 0700) and runs `sh -c <script>` in <command>/downloads (the agent's
// working directory when workingDirectory is empty or relative and exists),
// in its own process group, killed with SIGKILL at timeoutSeconds.
func (a *Agent) runShellScript(ctx context.Context, d *Document, res *Result, step Step, values map[string]string) StepResult {
	sr := StepResult{Name: step.Name, Action: step.Action, Status: StatusFailed, ExitCode: 1}
	inputs := a.inputs(d, step, values)
	lines, err := stringList(inputs["runCommand"])
	if err != nil {
		sr.Stderr = fmt.Sprintf("runCommand: %v\n", err)
		a.write(a.Stderr, sr.Stderr)
		return sr
	}
	stepDir := filepath.Join(res.Dir, step.Name)
	script := filepath.Join(stepDir, "_script.sh")
	if err := os.MkdirAll(stepDir, 0o700); err != nil {
		sr.Stderr = err.Error() + "\n"
		return sr
	}
	if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o700); err != nil {
		sr.Stderr = err.Error() + "\n"
		return sr
	}
	workDir := res.Dir
	wd, _ := inputs["workingDirectory"].(string)
	switch {
	case filepath.IsAbs(wd):
		workDir = wd
	default:
		if p := filepath.Join(res.Dir, "downloads", wd); isDir(p) {
			workDir = p
		}
	}
	timeout := timeoutOf(inputs["timeoutSeconds"])

	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = workDir
	cmd.Env = append(append(os.Environ(), a.Env...), a.agentEnv(d, res, values)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = multi(&stdout, a.Stdout)
	cmd.Stderr = multi(&stderr, a.Stderr)
	cmd.WaitDelay = 5 * time.Second // a descendant that left the group cannot hold the pipes open
	if err := cmd.Start(); err != nil {
		sr.Stderr = fmt.Sprintf("start sh: %v\n", err)
		return sr
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(time.Duration(timeout) * time.Second)
	defer timer.Stop()
	select {
	case err = <-done:
		sr.Stdout, sr.Stderr = stdout.String(), stderr.String()
		var exit *exec.ExitError
		switch {
		case err == nil:
			sr.Status, sr.ExitCode = StatusSuccess, 0
		case errors.As(err, &exit):
			sr.ExitCode = exit.ExitCode()
			if sr.ExitCode < 0 { // killed by a signal
				sr.ExitCode = KilledExitCode
			}
		default:
			sr.Stderr += err.Error() + "\n"
		}
	case <-timer.C:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		sr.Stdout, sr.Stderr = stdout.String(), stderr.String()
		sr.Status, sr.ExitCode = StatusTimedOut, KilledExitCode
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		sr.Stdout, sr.Stderr = stdout.String(), stderr.String()
		sr.ExitCode = KilledExitCode
		sr.Stderr += "cancelled\n"
	}
	return sr
}

// agentEnv is what SSM Agent adds for a script: SSM_<Name> for every
// ENV_VAR parameter (agents >= 3.3.2746.0), SSM_COMMAND_ID, and the
// instance's id and region.
func (a *Agent) agentEnv(d *Document, res *Result, values map[string]string) []string {
	var env []string
	if !a.Legacy {
		for _, name := range sortedKeys(values) {
			if d.Parameters[name].InterpolationType == "ENV_VAR" {
				env = append(env, "SSM_"+name+"="+values[name])
			}
		}
	}
	env = append(env, "SSM_COMMAND_ID="+res.CommandID)
	if a.InstanceID != "" {
		env = append(env, "AWS_SSM_INSTANCE_ID="+a.InstanceID)
	}
	if a.Region != "" {
		env = append(env, "AWS_SSM_REGION_NAME="+a.Region)
	}
	return env
}

// downloadContent does what SSM Agent's aws:downloadContent does for
// sourceType S3 (agent/plugins/downloadcontent): a relative destinationPath
// lands under <command>/downloads/; the key is first listed as a folder
// (<key>/), and when the listing is refused or empty it is one object; a
// file lands at destinationPath, or inside it when that is a directory or
// ends with "/"; downloaded files get mode 0700.
func (a *Agent) downloadContent(ctx context.Context, res *Result, step Step, inputs map[string]any) (string, error) {
	if t, _ := inputs["sourceType"].(string); t != "S3" {
		return "", fmt.Errorf("sourceType %q is not supported by agent-run (S3 only)", t)
	}
	var info struct {
		Path string `json:"path"`
	}
	switch si := inputs["sourceInfo"].(type) {
	case string:
		if err := json.Unmarshal([]byte(si), &info); err != nil {
			return "", fmt.Errorf("sourceInfo is not JSON: %w", err)
		}
	case map[string]any:
		info.Path, _ = si["path"].(string)
	}
	if strings.TrimSpace(info.Path) == "" {
		return "", errors.New("S3 source path in SourceInfo must be specified")
	}
	if a.S3 == nil {
		return "", errors.New("no S3 client for aws:downloadContent")
	}
	loc, err := ParseS3URL(info.Path)
	if err != nil {
		return "", err
	}
	dest, _ := inputs["destinationPath"].(string)
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(res.Dir, "downloads") + string(os.PathSeparator) + dest
	}
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()

	var keys []string
	if loc.Key != "" {
		prefix := strings.TrimSuffix(loc.Key, "/") + "/"
		list, err := a.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(loc.Bucket), Prefix: aws.String(prefix)})
		switch {
		case err != nil && strings.HasSuffix(loc.Key, "/"):
			return "", fmt.Errorf("list s3://%s/%s: %w", loc.Bucket, prefix, err)
		case err == nil:
			for _, o := range list.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
	}
	folder := len(keys) > 0
	if !folder {
		keys = []string{loc.Key}
	}
	var files []string
	for _, key := range keys {
		if key == "" || strings.HasSuffix(key, "/") {
			continue
		}
		var target string
		switch {
		case folder:
			target = filepath.Join(dest, filepath.FromSlash(strings.TrimPrefix(key, loc.Key)))
		case isDir(dest) || strings.HasSuffix(dest, string(os.PathSeparator)):
			target = filepath.Join(dest, filepath.Base(key))
		default:
			target = dest
		}
		if err := a.getObject(ctx, loc.Bucket, key, target); err != nil {
			return "", err
		}
		files = append(files, target)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("nothing to download at s3://%s/%s", loc.Bucket, loc.Key)
	}
	return "Content downloaded to " + dest, nil
}

func (a *Agent) getObject(ctx context.Context, bucket, key, target string) error {
	out, err := a.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(target), err)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	return os.Chmod(target, 0o700)
}

// timeoutOf reads timeoutSeconds as the agent does (string or number;
// out of range or unreadable: the default).
func timeoutOf(v any) int {
	n := 0
	switch t := v.(type) {
	case string:
		n, _ = strconv.Atoi(strings.TrimSpace(t))
	case int:
		n = t
	case float64:
		n = int(t)
	}
	if n < minTimeout || n > maxTimeout {
		return defaultTimeout
	}
	return n
}

func (a *Agent) logf(format string, args ...any) {
	if a.Stderr != nil {
		fmt.Fprintf(a.Stderr, format, args...)
	}
}

func (a *Agent) write(w io.Writer, s string) {
	if w != nil && s != "" {
		io.WriteString(w, s)
	}
}

func multi(buf *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// newCommandID is a random UUID, the shape of an SSM command id.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// inputs returns the step's inputs with {{Name}} substituted as the agent
// does. An agent older than 3.3.2746.0 (Legacy) pastes every value. A newer
// one gives ENV_VAR parameters to the process as SSM_<Name> "instead of
// directly inserting" them (AWS blog "Run Command now supports interpolating
// parameters into environment variables"); whether it still pastes them into
// other plugins' inputs (aws:downloadContent's sourceInfo) is not documented,
// so agent-run takes the strict reading: an ENV_VAR parameter's {{Name}} text
// stays as written in every input, and a document that relied on it fails
// here. Other parameters are substituted everywhere.
func (a *Agent) inputs(d *Document, step Step, values map[string]string) map[string]any {
	if a.Legacy {
		in, _ := substitute(step.Inputs, values).(map[string]any)
		return in
	}
	in, _ := substitute(step.Inputs, plainParams(d, values)).(map[string]any)
	return in
}

// plainParams are the values of parameters without interpolationType ENV_VAR.
func plainParams(d *Document, values map[string]string) map[string]string {
	out := map[string]string{}
	for name, v := range values {
		if d.Parameters[name].InterpolationType != "ENV_VAR" {
			out[name] = v
		}
	}
	return out
}
