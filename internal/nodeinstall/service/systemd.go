package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// systemd controls units with systemctl. systemd has no configuration test,
// so ConfigTest runs the server's own (with HAProxy's configuration file
// taken from the unit's CONFIG environment, as Debian's and Red Hat's units
// set it).
type systemd struct{ run *runner }

func (s *systemd) configTest(ctx context.Context, name string) error {
	var cfgs []string
	if kindOf(name) == kindHAProxy {
		env, err := s.show(ctx, name, "Environment")
		if err != nil {
			return err
		}
		cfgs = haproxyConfigs(env)
	}
	return ownTest(ctx, s.run, name, cfgs)
}

// haproxyConfigs reads CONFIG (and Red Hat's CFGDIR) from a unit's
// Environment= value; default /etc/haproxy/haproxy.cfg.
func haproxyConfigs(env string) []string {
	var cfg, dir string
	for _, kv := range strings.Fields(env) {
		kv = strings.Trim(kv, `"`)
		if v, ok := strings.CutPrefix(kv, "CONFIG="); ok {
			cfg = v
		}
		if v, ok := strings.CutPrefix(kv, "CFGDIR="); ok {
			dir = v
		}
	}
	if cfg == "" || !strings.HasPrefix(cfg, "/") {
		cfg = defaultHAProxyConfig
	}
	out := []string{cfg}
	if strings.HasPrefix(dir, "/") {
		out = append(out, dir)
	}
	return out
}

// active: `systemctl is-active` exits 0 for an active (or reloading) unit.
func (s *systemd) active(ctx context.Context, name string) (bool, error) {
	code, err := s.run.exitCode(ctx, []string{"systemctl", "is-active", "--quiet", name})
	if err != nil {
		return false, err
	}
	return code == 0, nil
}

func (s *systemd) mainPID(ctx context.Context, name string) (pidSource, error) {
	v, err := s.show(ctx, name, "MainPID")
	if err != nil {
		return pidSource{}, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || pid < 0 {
		return pidSource{}, fmt.Errorf("systemctl show %s: MainPID %q is not a number", name, sanitize(v, 40))
	}
	return pidSource{fixed: pid}, nil
}

// reload is `systemctl reload`, never reload-or-restart (which starts a
// stopped unit).
func (s *systemd) reload(ctx context.Context, name string) error {
	_, err := s.run.run(ctx, []string{"systemctl", "reload", name})
	return err
}

func (s *systemd) start(ctx context.Context, name string) error {
	_, err := s.run.run(ctx, []string{"systemctl", "start", name})
	return err
}

// show returns one property of a unit. `--value` needs systemd 230, which
// RHEL 7 lacks, so the "Name=value" line is parsed instead.
func (s *systemd) show(ctx context.Context, name, prop string) (string, error) {
	out, err := s.run.run(ctx, []string{"systemctl", "show", "-p", prop, name})
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prop+"="); ok {
			return v, nil
		}
	}
	return "", nil
}
