// Package report is what kache's read-only commands show, gathered from
// the daemon's answer and the files on disk: `kache daemon status`, the
// build and store figures of `kache stats`, `kache daemon history`,
// `kache why-miss`, `kache daemon log`, and the spool's backlog `kache
// daemon stop` shows while the daemon drains. It never starts, stops or
// writes anything; the cli prints what it returns.
package report
