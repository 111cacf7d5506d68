// Command kache-daemon is kache's background daemon: the process that
// `kache daemon run` execs and `kache daemon start` spawns. It is a binary
// of its own so that the kache client, which every compile starts, links
// none of what only the daemon needs (the S3 SDK, zstd, fsnotify, the log
// writer). main alone chooses exit codes; docs/exit-codes.md lists them.
//
// The go:debug line turns off the runtime's periodic GOMAXPROCS update,
// which re-reads the cgroup CPU quota and the affinity every second: an
// idle daemon must make no wake-ups at all (docs/benchmarks.md).
//
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/service"
	"github.com/kunobi-ninja/kache/supervisor"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	env := supervisor.Env{Stderr: os.Stderr, Getenv: os.Getenv, Exe: executable(), Version: version}
	err := supervisor.Command(context.Background(), env, os.Args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kache-daemon: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps an error onto the documented exit codes.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, supervisor.ErrAlreadyRunning):
		return 0
	case errors.Is(err, supervisor.ErrUsage):
		return 2
	case errors.Is(err, supervisor.ErrEpochStale):
		return service.ExitEpochStale
	case errors.Is(err, config.ErrInvalid):
		return service.ExitConfig
	}
	return 1 // supervisor.ErrForced, anything else
}

// executable is this binary's path as kache started it (absolute, and not
// resolved, so a symlink swap is watched at the link), else the resolved one.
func executable() string {
	if filepath.IsAbs(os.Args[0]) {
		return os.Args[0]
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
}
