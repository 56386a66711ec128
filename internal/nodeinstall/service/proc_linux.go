package service

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// alive reports whether pid is a live process: it exists and is not a
// zombie (a daemon's dead master stays a zombie where PID 1 does not reap).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X' && state != 'x'
}

// procStat returns the state and parent of pid from /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid int, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}

// children lists the live children of pid.
func children(pid int) []int {
	if pid <= 0 {
		return nil
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		c, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(c); ok && ppid == pid && state != 'Z' {
			out = append(out, c)
		}
	}
	return out
}

var signalNums = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}

// signalPID sends the named signal to a live pid.
func signalPID(pid int, name string) error {
	sig, ok := signalNums[name]
	if !ok {
		return fmt.Errorf("unknown signal %q", name)
	}
	if !alive(pid) {
		return fmt.Errorf("send SIG%s: no live process %d", name, pid)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("send SIG%s to %d: %w", name, pid, err)
	}
	return nil
}

// checkFilePerm refuses a services file others could have written: its
// commands run as root.
func checkFilePerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("services file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("services file %s: not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && os.Geteuid() == 0 && (st.Uid != 0 || fi.Mode().Perm()&0o022 != 0) {
		return fmt.Errorf("services file %s: must be owned by root and not writable by group or others (its commands run as root)", path)
	}
	return nil
}
