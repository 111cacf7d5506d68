package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/upload"
	"github.com/kunobi-ninja/kache/rpc"
	ucli "github.com/urfave/cli/v2"
)

// client verbs a wrapper or script calls: check, prefetch, stats, build-started.

func checkCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "check",
		Usage:     "ask the daemon whether KEY exists remotely, downloading it into the store if so",
		ArgsUsage: "KEY",
		Description: "Never starts the daemon: with no daemon it is an immediate miss, with the reason on stderr.\n" +
			"Exit codes: 0 hit (the store path is printed), 1 miss, 2 bad input.",
		Flags: []ucli.Flag{&ucli.DurationFlag{Name: "deadline", Value: 3 * time.Second, Usage: "how long the daemon may take"}},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("check takes one KEY, got %d arguments", c.NArg())
			}
			return runCheck(c.Context, env, c.Args().First(), c.Duration("deadline"))
		},
	}
}

func runCheck(ctx context.Context, env *Env, key string, deadline time.Duration) error {
	if err := upload.ValidKey(key); err != nil {
		return usagef("%v", err)
	}
	p, err := env.wrapperPaths()
	if err != nil {
		fmt.Fprintf(env.Stderr, "kache: miss: %v\n", err)
		return quiet(ErrMiss)
	}
	w := &daemonctl.Wrapper{Client: &rpc.Client{Socket: p.Socket, Epoch: env.epoch(), DialTimeout: 100 * time.Millisecond}}
	defer w.Client.Close()
	found, why := w.RemoteCheck(ctx, key, deadline)
	driftWarning(ctx, env, p, w.Client.SeenConfig)
	if why != nil {
		fmt.Fprintf(env.Stderr, "kache: miss: %v\n", why)
	}
	if !found {
		return quiet(ErrMiss)
	}
	fmt.Fprintln(env.Stdout, filepath.Join(p.StoreDir(), key))
	return nil
}

func prefetchCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:        "prefetch",
		Usage:       "ask the daemon to download KEYs into the store in the background",
		ArgsUsage:   "KEY...",
		Description: "Skipped (exit 0, with a message) when the daemon is offline: prefetch never starts it.",
		Action: func(c *ucli.Context) error {
			keys := c.Args().Slice()
			if len(keys) == 0 {
				return usagef("prefetch takes one or more KEYs")
			}
			for _, k := range keys {
				if err := upload.ValidKey(k); err != nil {
					return usagef("%v", err)
				}
			}
			return runOffline(c.Context, env, "prefetch", func(ctx context.Context, w *daemonctl.Wrapper) (bool, error) {
				return w.Prefetch(ctx, keys)
			})
		},
	}
}

func buildStartedCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "build-started",
		Usage: "record the start of a build session in the daemon's stats",
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "session", Usage: "session id (default: a timestamp)"}},
		Action: func(c *ucli.Context) error {
			id := c.String("session")
			if id == "" {
				id = time.Now().UTC().Format("20060102T150405.000000000")
			}
			return runOffline(c.Context, env, "build-started", func(ctx context.Context, w *daemonctl.Wrapper) (bool, error) {
				return w.BuildStarted(ctx, id)
			})
		},
	}
}

// runOffline runs a call that is skipped while the daemon is offline.
func runOffline(ctx context.Context, env *Env, what string, call func(context.Context, *daemonctl.Wrapper) (bool, error)) error {
	p, err := env.wrapperPaths()
	if err != nil {
		return err
	}
	w := &daemonctl.Wrapper{Client: &rpc.Client{Socket: p.Socket, Epoch: env.epoch(), Build: env.build}}
	defer w.Client.Close()
	skipped, err := call(ctx, w)
	switch {
	case skipped:
		fmt.Fprintf(env.Stderr, "kache: %s skipped: daemon offline (%v)\n", what, err)
		return nil
	case err != nil:
		return err
	}
	return nil
}
