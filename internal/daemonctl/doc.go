// Package daemonctl is the daemon as a client sees it: one place that
// decides what the daemon is doing (Probe), starts it (Starter: Ensure,
// Successor), stops it (AskStop, WaitGone) and restarts it (Restarter, the
// three tiers), and the auto-start policy a wrapper applies on top of the
// RPC transport (Wrapper), with the crash-loop breaker every client
// process shares (FileBreaker) and the daemon log's last lines for the
// errors that involve it (LogHint). Its waits are written with internal/poll. The
// commands that start, stop, restart and show the daemon, the monitor, the
// Rust wrapper and the cache program are its clients.
package daemonctl
