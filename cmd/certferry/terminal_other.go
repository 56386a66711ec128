//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package main

// stdinIsTerminal is false where certferry cannot tell: `certferry
// revoke` then needs --yes.
func stdinIsTerminal() bool { return false }
