package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/rpc"
)

// stopTimeout is how long to wait for a daemon's exit: its drain timeout
// (from the config both read) plus config.StopMargin.
func stopTimeout(env *Env) time.Duration {
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		cfg = config.Config{DrainTimeout: config.DefaultDrainTimeout}
	}
	return cfg.StopTimeout()
}

// runStop is `kache daemon stop`: ask for a graceful shutdown, show the
// drain's progress, and return only once the daemon process has gone.
func runStop(ctx context.Context, env *Env, timeout time.Duration) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	switch {
	case timeout < 0:
		return usagef("--timeout must be positive, not %s", timeout)
	case timeout == 0:
		timeout = stopTimeout(env)
	}
	res, err := daemonctl.AskStop(ctx, p, env.epoch(), "kache daemon stop", min(timeout, startTimeout))
	switch {
	case errors.Is(err, daemonctl.ErrNoDaemon):
		fmt.Fprintln(env.Stdout, "no kache daemon running")
		return nil
	case err != nil:
		return daemonctl.WithLog(p, fmt.Errorf("ask the daemon to stop: %w (if it is wedged, run `kache daemon restart`)", err))
	}
	if res.Pending > 0 {
		fmt.Fprintf(env.Stdout, "stopping: draining %d uploads (up to the drain timeout)\n", res.Pending)
	}
	if res.Predecessor > 0 {
		fmt.Fprintf(env.Stdout, "the daemon it took over from (pid %d) still drains the uploads it had in flight, up to its drain cap, then exits without starting another (log: %s)\n",
			res.Predecessor, p.LogFile())
	}
	if err := waitGone(ctx, env, p, res.Pid, timeout); err != nil {
		return err
	}
	printExit(env, p)
	return nil
}

// waitGone waits for the daemon pid to exit, showing drain progress.
func waitGone(ctx context.Context, env *Env, p config.Paths, pid int, timeout time.Duration) error {
	prog := newProgress(env.Stdout)
	live := newDrainLine(env, p) // on a terminal's stderr: one live line instead
	defer live.done()
	err := daemonctl.WaitGone(ctx, p, pid, timeout, func() {
		if live != nil {
			live.show(ctx)
		} else {
			prog.show(drainProgress(ctx, p))
		}
	})
	if errors.Is(err, daemonctl.ErrTimeout) {
		live.done()
		return daemonctl.WithLog(p, fmt.Errorf("the daemon still runs after %s; run `kache daemon restart` to force it", timeout))
	}
	return err
}

// drainProgress asks the draining daemon (it still answers status) how
// much work is left.
func drainProgress(ctx context.Context, p config.Paths) string {
	c := &rpc.Client{Socket: p.Socket, CallTimeout: 500 * time.Millisecond}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return "waiting for the daemon to exit"
	}
	return fmt.Sprintf("draining: %d queued, %d in flight", st.Queue.Queued, st.Queue.InFlight)
}

func printExit(env *Env, p config.Paths) {
	rec, err := daemonctl.LastExit(p)
	if err != nil {
		fmt.Fprintln(env.Stdout, "kache daemon stopped")
		return
	}
	fmt.Fprintf(env.Stdout, "kache daemon stopped (pid %d): drained %d uploads, %d left for the next start\n", rec.Pid, rec.Drained, rec.Left)
	if rec.RemoteDown {
		fmt.Fprintf(env.Stdout, "the remote is unreachable, so the drain did not wait: the %d uploads left stay in %s and go when a daemon next reaches it\n", rec.Left, p.SpoolDir())
	}
}
