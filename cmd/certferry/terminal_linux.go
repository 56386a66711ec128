package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// stdinIsTerminal reports whether standard input is a terminal, where
// `certferry revoke` can ask for confirmation: a TCGETS ioctl succeeds on
// a tty only (/dev/null is a character device too, and no terminal).
func stdinIsTerminal() bool {
	_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
	return err == nil
}
