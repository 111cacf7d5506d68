package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/install"
	ucli "github.com/urfave/cli/v2"
)

func monitorCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "monitor",
		Usage: "watch what the daemon does: a full-screen view, or one plain-text or JSON snapshot",
		Description: "Header: this binary, and the daemon's pid, version, epoch, state, time in state, uptime and idle\n" +
			"deadline, or `daemon: offline` with the likely cause. Tabs: Build, Store, Transfers, Lifecycle;\n" +
			"offline, every tab is read from the files on disk. Keys: 1-4 or arrows switch tabs, ? lists the\n" +
			"keys, q quits. It never starts, stops or restarts the daemon. It runs kache-monitor, installed\n" +
			"beside kache (docs/monitor.md). Exit codes: 0; 2 bad flags; 78 kache-monitor missing.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "once", Usage: "print every tab once as plain text and exit (the default when stdout is not a terminal)"},
			&ucli.BoolFlag{Name: "json", Usage: "print one snapshot as JSON and exit"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("monitor takes no arguments")
			}
			return runMonitor(env, c.Bool("once"), c.Bool("json"))
		},
	}
}

// runMonitor execs kache-monitor in our place, as `daemon run` execs
// kache-daemon: the client never links bubbletea.
func runMonitor(env *Env, once, asJSON bool) error {
	exe, err := install.MonitorPath(env.Exe)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	argv := []string{exe, "--client-exe", env.Exe}
	if once {
		argv = append(argv, "--once")
	}
	if asJSON {
		argv = append(argv, "--json")
	}
	if err := syscall.Exec(exe, argv, os.Environ()); err != nil {
		return fmt.Errorf("%w: exec %s: %w (reinstall kache: `make build` or `go install ./cmd/...`)", config.ErrInvalid, exe, err)
	}
	return nil // not reached
}
