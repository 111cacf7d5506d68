// Command kache-monitor is `kache monitor`: the full-screen view of what
// the daemon does, with its offline fallback. It is a binary of its own,
// which `kache monitor` execs, so the client every compile starts links
// none of the terminal UI (bubbletea's package initialisation alone would
// cost every start). main alone chooses exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/monitor"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	env := monitor.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		Version: version, Terminal: isTerminal(os.Stdout)}
	err := monitor.Command(ctx, env, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kache monitor: %v\n", err)
	}
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, monitor.ErrUsage):
		return 2
	case errors.Is(err, config.ErrInvalid):
		return 78
	}
	return 1
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
