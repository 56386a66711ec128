package main

import (
	"os"
	"testing"
)

// /dev/null is a character device but no terminal: revoke must not take
// it for one (it would read end of file as a confirmation attempt and
// fail, where a script should be told to pass --yes).
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	if stdinIsTerminal() {
		t.Fatal("stdin /dev/null taken for a terminal")
	}
}
