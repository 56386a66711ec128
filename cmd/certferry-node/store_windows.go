//go:build windows

package main

import "github.com/certferry/certferry/internal/nodeinstall"

// newStore returns the Windows certificate store and IIS bindings.
// TODO(ENGINE): wire winstore.New() once internal/nodeinstall/winstore lands.
func newStore() nodeinstall.CertStore { return nil }
