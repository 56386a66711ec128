//go:build !linux

package service

import (
	"errors"
	"fmt"
	"os"
)

// Process checks read /proc; elsewhere (Windows, where IIS is handled by
// winstore) a pid file cannot be checked.

func alive(int) bool { return false }

func children(int) []int { return nil }

func signalPID(pid int, name string) error {
	return fmt.Errorf("send SIG%s to %d: %w", name, pid, errors.ErrUnsupported)
}

func checkFilePerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("services file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("services file %s: not a regular file", path)
	}
	return nil
}
