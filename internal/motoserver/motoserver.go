// Package motoserver starts moto_server, the AWS emulator, on a free
// loopback port for integration tests and `certferry demo`. It never falls
// back to anything else: when moto_server is missing, Start fails.
//
// moto_server serves requests on parallel threads, and its DynamoDB checks
// a condition and writes in separate steps: two concurrent conditional
// writes to one item can both succeed, which real DynamoDB never allows.
// certferry's exactly-once guarantees rest on that atomicity, so Start runs
// moto's own server application with requests handled one at a time (the
// same moto, the same backends; clients still run concurrently).
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Server is a running moto_server.
type Server struct {
	URL string
	cmd *exec.Cmd
	log *os.File
}

// Start runs moto_server on a free 127.0.0.1 port and waits until it
// answers. ACM certificates requested from it are issued at once
// (MOTO_ACM_VALIDATION_WAIT=0) unless env (KEY=value pairs) says otherwise.
func Start(ctx context.Context, env ...string) (*Server, error) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return nil, errors.New("moto_server not found on PATH: install it with pip install 'moto[server]' (or run .ci/run, which does)")
	}
	python, err := pythonWithMoto()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	logf, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		return nil, fmt.Errorf("create moto log: %w", err)
	}
	cmd := exec.Command(python, "-c", serialized, strconv.Itoa(port))
	cmd.Env = append(append(os.Environ(), "MOTO_ACM_VALIDATION_WAIT=0", "MOTO_PORT="+strconv.Itoa(port)), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: logf}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("moto_server did not answer on %s within 60s (log: %s)", s.URL, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serialized is moto_server's main with threaded=False.
const serialized = `import sys
from werkzeug.serving import run_simple
from moto.server import DomainDispatcherApplication, create_backend_app
run_simple("127.0.0.1", int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)
`

// pythonWithMoto finds the Python interpreter moto_server runs on.
func pythonWithMoto() (string, error) {
	for _, name := range []string{"python3", "python"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import moto.server, werkzeug").Run() == nil {
			return p, nil
		}
	}
	return "", errors.New("moto_server is on PATH but no python3 on PATH imports moto.server: install moto with pip install 'moto[server]' for that python")
}

// Reset wipes every emulated resource.
func (s *Server) Reset(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	return nil
}

// Stop ends moto_server and removes its log.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.log.Close()
	os.Remove(s.log.Name())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
