// Package realserver holds the node installer's integration tests: the real
// certferry-node binary, built from cmd/certferry-node, runs with SSM_*
// parameters against moto_server and drives real nginx, Apache httpd,
// HAProxy and Postfix instances, each from its own configuration in a temp
// directory on free loopback ports. It has no non-test code.
//
// Like the project's other integration tests they carry the integration
// build tag: `make test` (go test -tags integration ./...) runs them, and
// they FAIL, never skip, when moto_server or a server binary is missing
// (scripts/ensure-deps.sh, run by .ci/run, installs them). They run as
// root: the installer sets owners and groups, and the servers bind, drop
// privileges and read keys as they do on a node.
package realserver
