package daemonctl

import (
	"context"
	"errors"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/rpc"
)

// ErrNoDaemon is AskStop's answer when no daemon runs: nothing to stop.
var ErrNoDaemon = errors.New("no kache daemon running")

// ErrNotRunning: no daemon runs and none could be started, so a command
// that needs one cannot go on.
var ErrNotRunning = errors.New("daemon not running")

// ErrTimeout is WaitGone's answer when the daemon outlived the timeout.
var ErrTimeout = poll.ErrTimeout

// AskStop asks the daemon to stop (a graceful shutdown: it drains). A
// daemon that holds its run lock without a socket that answers is starting
// (not bound yet) or exiting (socket gone): AskStop waits, up to within,
// for it to answer or to let go of the lock, instead of failing.
func AskStop(ctx context.Context, p config.Paths, epoch int64, reason string, within time.Duration) (*rpc.ShutdownResult, error) {
	var res *rpc.ShutdownResult
	var err error
	_ = poll.Until(ctx, poll.Real, 50*time.Millisecond, within, func() bool {
		c := &rpc.Client{Socket: p.Socket, Epoch: epoch}
		res, err = c.Shutdown(ctx, reason)
		c.Close()
		return !rpc.IsNotRunning(err) || !runlock.LockHeld(p.RunLock())
	})
	if rpc.IsNotRunning(err) && !runlock.LockHeld(p.RunLock()) {
		return nil, ErrNoDaemon
	}
	return res, err
}

// WaitGone waits, up to timeout, until the daemon pid has exited, calling
// tick between looks (to show the drain's progress). It watches the
// process, not the run lock: a daemon lets go of the lock in its last
// steps, before its process is gone, and a successor waiting for the lock
// takes it at once. pid 0 (unknown) falls back to the run lock alone.
func WaitGone(ctx context.Context, p config.Paths, pid int, timeout time.Duration, tick func()) error {
	return poll.Until(ctx, poll.Real, 25*time.Millisecond, timeout, func() bool {
		if !alive(p, pid) {
			return true
		}
		if tick != nil {
			tick()
		}
		return false
	})
}

func alive(p config.Paths, pid int) bool {
	if pid <= 0 {
		return runlock.LockHeld(p.RunLock())
	}
	return !procid.Exited(pid)
}
