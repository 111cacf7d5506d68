// Package daemonctl is the daemon as a client sees it: one place that
// decides what the daemon is doing (Probe), the one loop every client wait
// is written with (Until, on an injected Clock so the waits are tested
// with a fake one), and the auto-start policy a wrapper applies on top of
// the RPC transport (Wrapper). The commands that start, stop, restart and
// show the daemon, the Rust wrapper and the cache program are its clients.
package daemonctl
