package cli

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
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
	res, err := askStop(ctx, env, p)
	// A daemon that holds its run lock without a socket that answers is
	// starting (not bound yet) or exiting (socket gone): wait, bounded,
	// for it to answer or to let go of the lock, instead of failing.
	for deadline := time.Now().Add(min(timeout, startTimeout)); rpc.IsNotRunning(err) && runlock.LockHeld(p.RunLock()) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		res, err = askStop(ctx, env, p)
	}
	switch {
	case rpc.IsNotRunning(err) && !runlock.LockHeld(p.RunLock()):
		fmt.Fprintln(env.Stdout, "no kache daemon running")
		return nil
	case err != nil:
		return withDaemonLog(p, fmt.Errorf("ask the daemon to stop: %w (if it is wedged, run `kache daemon restart`)", err))
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

// askStop sends the shutdown request once.
func askStop(ctx context.Context, env *Env, p config.Paths) (*rpc.ShutdownResult, error) {
	c := &rpc.Client{Socket: p.Socket, Epoch: env.epoch()}
	defer c.Close()
	return c.Shutdown(ctx, "kache daemon stop")
}

// waitGone waits for the daemon pid to exit, showing drain progress. It
// watches the process, not the run lock: a successor waiting for the lock
// takes it the moment the old daemon releases it.
func waitGone(ctx context.Context, env *Env, p config.Paths, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	prog := newProgress(env.Stdout)
	live := newDrainLine(env, p) // on a terminal's stderr: one live line instead
	defer live.done()
	for daemonAlive(p, pid) {
		if time.Now().After(deadline) {
			live.done()
			return withDaemonLog(p, fmt.Errorf("the daemon still runs after %s; run `kache daemon restart` to force it", timeout))
		}
		if live != nil {
			live.show(ctx)
		} else {
			prog.show(drainProgress(ctx, p))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return nil
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
	rec, err := statefile.ReadExit(p.ExitFile())
	if err != nil {
		fmt.Fprintln(env.Stdout, "kache daemon stopped")
		return
	}
	fmt.Fprintf(env.Stdout, "kache daemon stopped (pid %d): drained %d uploads, %d left for the next start\n", rec.Pid, rec.Drained, rec.Left)
	if rec.RemoteDown {
		fmt.Fprintf(env.Stdout, "the remote is unreachable, so the drain did not wait: the %d uploads left stay in %s and go when a daemon next reaches it\n", rec.Left, p.SpoolDir())
	}
}

// daemonAlive: the process pid exists while the run lock is held (by it,
// or by a successor that has not yet been let in, which the pid check
// tells apart); pid 0 (unknown) falls back to the run lock alone.
func daemonAlive(p config.Paths, pid int) bool {
	if !runlock.LockHeld(p.RunLock()) {
		return false
	}
	return pid <= 0 || syscall.Kill(pid, 0) == nil
}
