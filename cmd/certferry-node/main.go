// Command certferry-node is certferry's node installer. The SSM document
// downloads it, checks its SHA-256 and runs `certferry-node install` with
// the command's parameters as SSM_<Name> environment variables. Its last
// output line is CERTFERRY_RESULT {json}; it exits 0 (installed or
// unchanged), 1 (failed, nothing changed) or 2 (rolled back).
package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/nodeinstall"
	"github.com/certferry/certferry/internal/nodeinstall/probe"
	"github.com/certferry/certferry/internal/nodeinstall/service"
	"github.com/certferry/certferry/internal/nodeinstall/winstore"
)

var (
	_ nodeinstall.ServiceManager = service.Manager(nil)
	_ nodeinstall.CertStore      = (*winstore.PowerShell)(nil)
	_ nodeinstall.Prober         = served
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "install" && os.Args[1] != "version") {
		fmt.Fprintln(os.Stderr, "usage: certferry-node install | version")
		os.Exit(64)
	}
	if os.Args[1] == "version" {
		fmt.Println(version)
		return
	}
	r := install(context.Background())
	fmt.Println(r.Line())
	os.Exit(r.ExitCode())
}

func install(ctx context.Context) nodeinstall.Result {
	windows := runtime.GOOS == "windows"
	p, err := nodeinstall.ParamsFromEnv(os.LookupEnv)
	if err != nil {
		return nodeinstall.Result{Status: nodeinstall.StatusFailed, Format: p.Format, Reload: "skipped", Verify: "skipped", Detail: err.Error()}
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(p.Region))
	if err != nil {
		return nodeinstall.Result{Status: nodeinstall.StatusFailed, Format: p.Format, Reload: "skipped", Verify: "skipped", Detail: "load AWS configuration: " + err.Error()}
	}
	e := &nodeinstall.Engine{
		Secrets:  secretsmanager.NewFromConfig(cfg),
		Probe:    served,
		StateDir: stateDir(windows),
		Windows:  windows,
		Out:      os.Stdout,
	}
	if windows {
		e.Store = winstore.New(nil)
	} else {
		e.Services = service.New(service.Options{ServicesFile: os.Getenv("CERTFERRY_SERVICES")})
	}
	return e.Run(ctx, p)
}

// stateDir is CERTFERRY_STATE_DIR, else /var/lib/certferry (Linux) or
// %ProgramData%\certferry (Windows).
func stateDir(windows bool) string {
	if d := os.Getenv("CERTFERRY_STATE_DIR"); d != "" {
		return d
	}
	if windows {
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return filepath.Join(pd, "certferry")
	}
	return "/var/lib/certferry"
}

func served(ctx context.Context, t nodeinstall.VerifyTarget) (*x509.Certificate, error) {
	return probe.Served(ctx, probe.Target{Address: t.Address, Port: t.Port, ServerName: t.ServerName, StartTLS: t.StartTLS})
}
