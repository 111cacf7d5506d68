package supervisor

import (
	"strconv"
	"syscall"

	"github.com/kunobi-ninja/kache/states"
)

// A successor that dies after it took over, while this daemon still drains,
// would leave the socket with nobody accepting: this daemon has stopped
// accepting, and its clients would be refused until one of them started a
// daemon. So the old daemon keeps a dup of the listener until it exits
// (the socket stays listening, connections wait in its backlog) and, if
// its successor exits meanwhile, starts another from the binary at its
// path with the same socket and lock. No state changes: the daemon stays
// handed_over and goes on draining.

// keepListener dups the listener before the server closes it.
func (d *Daemon) keepListener() {
	sc, ok := d.ln.(syscall.Conn)
	if !ok {
		return
	}
	if f, err := dupConn(sc, "kept listener"); err == nil {
		d.keptLn = f
	}
}

// successorExited fires when the serving successor exits while this daemon
// drains; nil (never) otherwise.
func (d *Daemon) successorExited() <-chan struct{} {
	if d.successor == nil || d.keptLn == nil || d.respawning || d.state().state != states.HandedOver {
		return nil
	}
	return d.successor.Done
}

// onSuccessorLost starts another successor, outside the loop.
func (d *Daemon) onSuccessorLost() {
	d.respawning = true
	d.o.Log.Error("the successor exited while this daemon drains; starting another on the same socket",
		"pid", d.successor.Process.Pid, "err", d.successor.Err())
	files, err := d.handoverFiles()
	go func() {
		if err != nil {
			d.respawnDone <- handoverResult{ev: states.HandoverFailed, cause: err.Error()}
			return
		}
		defer closeAll(files)
		d.respawnDone <- d.spawnSuccessor(files)
	}()
}

// onRespawn takes the outcome on the loop.
func (d *Daemon) onRespawn(r handoverResult) {
	d.respawning = false
	if r.ev != states.SuccessorReady {
		d.o.Log.Error("no successor after the first one exited: the next client starts a daemon", "err", r.cause)
		return
	}
	d.successor = r.child
	_ = Notify("MAINPID=" + strconv.Itoa(r.child.Process.Pid))
	d.o.Log.Info("another successor serves", "pid", r.child.Process.Pid)
}
