package cli

import (
	ucli "github.com/urfave/cli/v2"
)

// daemonCommand is `kache daemon ...`; bare `kache daemon` is status.
func daemonCommand(env *Env) *ucli.Command {
	jsonFlag := &ucli.BoolFlag{Name: "json", Usage: "print the status as JSON (schema in docs/status.md)"}
	return &ucli.Command{
		Name:        "daemon",
		Usage:       "manage the background daemon (bare: show its status)",
		Description: "Without a subcommand, prints the daemon's status. Exit codes: 0 running, 1 not answering (wedged), 3 not running.",
		Flags:       []ucli.Flag{jsonFlag},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() { // not status: a mistyped subcommand
				return usagef("no daemon subcommand %q; run `kache daemon --help`", c.Args().First())
			}
			return runStatus(c.Context, env, c.Bool("json"))
		},
		Subcommands: []*ucli.Command{
			{Name: "status", Usage: "show whether the daemon runs, and its state (read-only)", Flags: []ucli.Flag{jsonFlag},
				Action: func(c *ucli.Context) error { return runStatus(c.Context, env, c.Bool("json")) }},
			{Name: "start", Usage: "start the daemon in the background; returns once it answers",
				Flags:  []ucli.Flag{&ucli.DurationFlag{Name: "timeout", Value: startTimeout, Usage: "how long to wait for the daemon to answer"}},
				Action: func(c *ucli.Context) error { return runStart(c.Context, env, c.Duration("timeout")) }},
			{Name: "stop", Usage: "stop the daemon gracefully (drains uploads for up to drain_timeout_secs, 30 s by default); returns once it has exited",
				Flags:  []ucli.Flag{&ucli.DurationFlag{Name: "timeout", Usage: "how long to wait for the daemon to exit (default: drain_timeout_secs + 15s)"}},
				Action: func(c *ucli.Context) error { return runStop(c.Context, env, c.Duration("timeout")) }},
			{Name: "restart", Usage: "restart the daemon, recovering a wedged one (service kickstart, else kill and respawn)",
				Action: func(c *ucli.Context) error { return runRestart(c.Context, env) }},
			{Name: "run", Usage: "run the daemon in the foreground (what start and the service manager launch)",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "background", Hidden: true, Usage: "log only to the log file (set by start)"},
					&ucli.BoolFlag{Name: "successor", Hidden: true, Usage: "wait for a draining daemon to exit, then take over (set by upload)"},
				},
				Action: func(c *ucli.Context) error {
					return runDaemon(c.Context, env, c.Bool("background"), c.Bool("successor"))
				}},
			{Name: "log", Usage: "print the daemon log and follow it like tail -f",
				Flags: []ucli.Flag{
					&ucli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 50, Usage: "how many last lines to print first"},
					&ucli.BoolFlag{Name: "no-follow", Usage: "print and exit instead of following"},
				},
				Action: func(c *ucli.Context) error { return runLog(c.Context, env, c.Int("lines"), !c.Bool("no-follow")) }},
			historyCommand(env),
			{Name: "install", Usage: "install the daemon as a launchd agent or systemd user service",
				Action: func(c *ucli.Context) error { return runInstall(c.Context, env) }},
			{Name: "uninstall", Usage: "remove the launchd agent or systemd user service",
				Action: func(c *ucli.Context) error { return runUninstall(c.Context, env) }},
		},
	}
}
