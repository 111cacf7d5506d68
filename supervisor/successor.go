package supervisor

import (
	"context"
	"time"

	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
)

// successorPoll is how often a successor waiting for the run lock asks
// who answers on the socket.
const successorPoll = 100 * time.Millisecond

// waitOutgoing is a successor's wait for the run lock (`daemon run
// --successor`, started by an upload that met a daemon draining toward
// its exit). It waits only while the lock's holder is on its way out: a
// daemon that answers running holds the lock for good (`daemon start`
// brought it up while the drained one exited, or a hand-over passed the
// lock on), and a successor waiting behind it would take over the moment
// it is stopped, leaving a daemon running after `kache daemon stop`.
// Draining, idle-exiting and stale daemons never return to running, so
// running is never the daemon the successor was started for.
func (d *Daemon) waitOutgoing(ctx context.Context) (*runlock.Lock, error) {
	for {
		try, cancel := context.WithTimeout(ctx, successorPoll)
		lock, err := runlock.WaitLock(try, d.o.Paths.RunLock())
		cancel()
		if err == nil || try.Err() == nil {
			return lock, err
		}
		if ctx.Err() != nil {
			return nil, runlock.ErrLocked
		}
		if pid := d.runningAnswers(ctx); pid != 0 {
			d.o.Log.Info("not taking over: a running daemon holds the run lock", "pid", pid)
			return nil, runlock.ErrLocked
		}
	}
}

// runningAnswers is the pid of the daemon answering on the socket in
// state running, or 0 (none answers, or it is not running).
func (d *Daemon) runningAnswers(ctx context.Context) int {
	c := &rpc.Client{Socket: d.o.Paths.Socket, CallTimeout: 5 * successorPoll}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil || st.State != string(states.Running) {
		return 0
	}
	return st.Pid
}
