//go:build !windows

package main

import "github.com/certferry/certferry/internal/nodeinstall"

// newStore: only Windows nodes have a certificate store.
func newStore() nodeinstall.CertStore { return nil }
