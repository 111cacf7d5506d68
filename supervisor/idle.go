package supervisor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/kunobi-ninja/kache/states"
)

// activity is the time of the last request, written by RPC handlers and
// read by the loop, so the hot path never waits on the loop.
type activity struct{ last atomic.Int64 }

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

// onRequest is the RPC server's hook for every request: it is activity,
// and it arms the trim of the next quiet period.
func (d *Daemon) onRequest() {
	d.activity.touch()
	d.onWork()
}

// onWork notes work of any kind: the trim of the next quiet period and
// the next write of the lasting totals are armed.
func (d *Daemon) onWork() {
	d.trim.activity()
	d.totalsDirty()
}
func (a *activity) at() time.Time    { return time.Unix(0, a.last.Load()) }
func (a *activity) init(t time.Time) { a.last.Store(t.UnixNano()) }

// busyRecheck is how soon the idle timer looks again while uploads or open
// connections hold the exit off; the deadline itself counts from when the
// work ended, so this only bounds how late the exit can come.
const busyRecheck = 500 * time.Millisecond

// idleTimer fires when the idle deadline may have passed. It is a real
// timer re-armed to the exact remaining time, never a polling loop, so the
// exit comes within timer precision of the deadline.
type idleTimer struct {
	timeout time.Duration
	t       *time.Timer
}

func newIdleTimer(timeout time.Duration) *idleTimer {
	it := &idleTimer{timeout: timeout}
	if timeout > 0 {
		it.t = time.NewTimer(timeout)
	}
	return it
}

// C is the timer's channel; nil (blocks forever) when idle exit is off.
func (it *idleTimer) C() <-chan time.Time {
	if it.t == nil {
		return nil
	}
	return it.t.C
}

func (it *idleTimer) reset(d time.Duration) {
	if it.t != nil {
		it.t.Reset(d)
	}
}

func (it *idleTimer) stop() {
	if it.t != nil {
		it.t.Stop()
	}
}

// idleDeadline is when the daemon will exit if nothing happens, or false
// when idle exit is disabled or work in progress holds it off. minConns is
// how many open connections are not activity: status asks over one.
func (d *Daemon) idleDeadline(minConns int) (time.Time, bool) {
	timeout := d.o.Config.IdleTimeout
	if timeout <= 0 || d.pool.Busy() || d.srv.ActiveConns() > minConns {
		return time.Time{}, false
	}
	last := d.activity.at()
	if t := d.pool.LastActive(); t.After(last) {
		last = t
	}
	return last.Add(timeout), true
}

// onIdle runs when the idle timer fires: exit if the deadline has passed,
// else re-arm for what is left (a full timeout while work holds it off).
func (d *Daemon) onIdle(ctx context.Context, it *idleTimer) {
	if d.state().state != states.Running {
		return
	}
	deadline, ok := d.idleDeadline(0)
	exit, wait := idleVerdict(time.Now(), deadline, ok, it.timeout)
	if !exit {
		it.reset(wait)
		return
	}
	d.fire(ctx, event{states.IdleTimeout, "no requests or uploads for " + it.timeout.String()})
}

// idleVerdict decides, at now, whether the daemon exits idle, or how long
// the timer waits before looking again: the time left to the deadline, or,
// while work holds the exit off (held), at most busyRecheck.
func idleVerdict(now, deadline time.Time, free bool, timeout time.Duration) (exit bool, wait time.Duration) {
	if !free {
		return false, min(timeout, busyRecheck)
	}
	if left := deadline.Sub(now); left > 0 {
		return false, left
	}
	return true, 0
}
