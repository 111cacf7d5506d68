package daemonctl

import (
	"context"
	"errors"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
)

// Health is what the daemon is doing, as a client can tell.
type Health string

// The daemon's health. Absent, SocketGone, Wedged and Foreign are what a
// client sees when no daemon answers; the others come from its answer.
const (
	Absent      Health = "absent"       // nobody holds the run lock: no daemon
	Starting    Health = "starting"     // it answers and is starting
	Running     Health = "running"      // it answers and serves
	Draining    Health = "draining"     // it answers, on its way out (stop, idle, epoch)
	HandingOver Health = "handing_over" // it answers and hands over to a successor
	SocketGone  Health = "socket_gone"  // the run lock is held but nothing accepts on the socket
	Wedged      Health = "wedged"       // the run lock is held, the socket accepts, no answer in time
	Foreign     Health = "foreign"      // something answers on the socket, not as our daemon
)

// Report is one probe: the health, and what backs it.
type Report struct {
	Health Health
	Pid    int                    // the daemon's pid: from its answer, else its state file; 0 unknown
	Status *rpc.Status            // its answer, when it answered
	State  *statefile.StateRecord // its state file, when it did not answer (stale if nobody holds the lock)
	Exit   *statefile.ExitRecord  // the last exit record, if any
	Err    error                  // why it did not answer
	// Held: a process holds the run lock. Looked at only when the daemon
	// did not answer (one that answers holds it).
	Held bool
}

// Answers reports whether the daemon answered the probe.
func (r Report) Answers() bool { return r.Status != nil }

// Present reports whether a daemon is there, answering or not: it
// answered, or a process holds the run lock.
func (r Report) Present() bool { return r.Status != nil || r.Held }

// Live is the pid and start time of the daemon that is there now: from
// its answer, else from its state file while it holds the run lock (a
// state file nobody holds is a dead daemon's). ok is false when none is.
func (r Report) Live() (pid int, started time.Time, ok bool) {
	switch {
	case r.Status != nil:
		return r.Status.Pid, r.Status.StartedAt, true
	case r.Held && r.State != nil:
		return r.State.Pid, r.State.StartedAt, true
	}
	return 0, time.Time{}, false
}

// Probe asks the daemon for its status within timeout and classifies what
// it finds. It is the one place that tells a wedged daemon from one whose
// socket is gone or one that is not there: status, restart, stop and the
// monitor's offline view all ask it.
func Probe(ctx context.Context, p config.Paths, epoch int64, timeout time.Duration) Report {
	c := &rpc.Client{Socket: p.Socket, Epoch: epoch, CallTimeout: timeout}
	defer c.Close()
	st, err := c.Status(ctx)
	r := Report{Err: err}
	if rec, xerr := statefile.ReadExit(p.ExitFile()); xerr == nil {
		r.Exit = &rec
	}
	if err == nil {
		r.Health, r.Pid, r.Status = answered(st), st.Pid, st
		return r
	}
	held := runlock.LockHeld(p.RunLock())
	r.Held = held
	if rec, serr := statefile.ReadState(p.StateFile()); serr == nil {
		r.State, r.Pid = &rec, rec.Pid // without the lock: left by a daemon that died
	}
	r.Health = silent(err, held)
	return r
}

// answered classifies a daemon that answered by its state.
func answered(st *rpc.Status) Health {
	switch s := states.State(st.State); {
	case s == states.Starting:
		return Starting
	case s == states.HandingOver || s == states.HandedOver:
		return HandingOver
	case s.Draining() || s == states.Stopped:
		return Draining
	}
	return Running
}

// silent classifies a daemon that did not answer.
func silent(err error, held bool) Health {
	switch {
	case errors.Is(err, rpc.ErrImpostor) || !held && !rpc.IsNotRunning(err):
		return Foreign
	case held && rpc.IsNotRunning(err):
		return SocketGone
	case held:
		return Wedged
	}
	return Absent
}

// StatePid is the pid the state file names, 0 if none: a draining
// daemon's, which its successor records as its start reason.
func StatePid(p config.Paths) int {
	rec, err := statefile.ReadState(p.StateFile())
	if err != nil {
		return 0
	}
	return rec.Pid
}

// LastExit is the record the last daemon left when it stopped: why, and
// what its drain did.
func LastExit(p config.Paths) (statefile.ExitRecord, error) {
	return statefile.ReadExit(p.ExitFile())
}
