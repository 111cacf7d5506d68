package supervisor

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/states"
)

// A successor that dies after it took over, while this daemon still drains,
// would leave the socket with nobody accepting: this daemon has stopped
// accepting, and its clients would be refused until one of them started a
// daemon. So the old daemon keeps a dup of the listener until it exits
// (the socket stays listening, connections wait in its backlog) and, if
// its successor dies meanwhile, starts another from the binary at its
// path with the same socket.
//
// Only a death counts. A successor that exits on its own was stopped
// (`kache daemon stop`), handed over in turn, or went idle: whoever serves
// now, or nobody, is what the user asked for, and starting another would
// put two daemons on one socket. And the run lock decides who may serve:
// once the successor is ready this daemon lets go of its copy of the lock
// (releaseLineage), so after a death it must take the lock afresh, which
// fails if anyone else (a successor's successor, a daemon a client
// started) holds it.

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

// releaseLineage closes this daemon's descriptor of the run lock once the
// successor holds it: the lock is then held exactly as long as the
// successor lives, so a stop that ends the successor frees it at once,
// even while this daemon still drains.
func (d *Daemon) releaseLineage() {
	if d.lock != nil {
		_ = d.lock.Release() // a close, not an unlock: the successor's descriptor keeps the flock
	}
}

// successorExited fires when the serving successor exits while this daemon
// drains; nil (never) otherwise.
func (d *Daemon) successorExited() <-chan struct{} {
	if d.successor == nil || d.keptLn == nil || d.respawning || d.lineageOver || d.state().state != states.HandedOver {
		return nil
	}
	return d.successor.Done
}

// onSuccessorLost starts another successor, outside the loop, if the one
// that served died and nobody else took the run lock.
func (d *Daemon) onSuccessorLost() {
	pid, err := d.successor.Process.Pid, d.successor.Err()
	if !died(err) {
		d.endLineage()
		d.o.Log.Info("the successor exited on its own (stopped, idle, or handed over in turn): not starting another", "pid", pid, "exit", errText(err))
		return
	}
	lock, lerr := runlock.TryLock(d.o.Paths.RunLock())
	if lerr != nil {
		d.endLineage()
		d.o.Log.Info("the successor died, but another daemon holds the run lock: it serves, not starting another", "pid", pid, "exit", errText(err), "lock", lerr)
		return
	}
	d.lock = lock
	d.respawning = true
	d.o.Log.Error("the successor died while this daemon drains; starting another on the same socket", "pid", pid, "err", err)
	files, ferr := d.handoverFiles()
	go func() {
		if ferr != nil {
			d.respawnDone <- handoverResult{ev: states.HandoverFailed, cause: ferr.Error()}
			return
		}
		defer closeAll(files)
		d.respawnDone <- d.spawnSuccessor(context.Background(), files)
	}()
}

// endLineage gives up the socket for good: no successor will be started
// from this daemon, so its kept listener goes (the daemon that serves now,
// if any, has its own).
func (d *Daemon) endLineage() {
	d.lineageOver = true
	if d.keptLn != nil {
		_ = d.keptLn.Close()
		d.keptLn = nil
	}
}

// died reports whether a successor's exit was a death (a signal other than
// a polite one, or a Go runtime crash), not an exit it chose.
func died(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false // exit 0, or it still runs
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok {
		return false
	}
	if ws.Signaled() {
		s := ws.Signal()
		return s != syscall.SIGTERM && s != syscall.SIGINT
	}
	return ws.ExitStatus() == 2 // a panic or fatal error of the Go runtime
}

func errText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// onRespawn takes the outcome on the loop.
func (d *Daemon) onRespawn(r handoverResult) {
	d.respawning = false
	d.releaseLineage()
	if r.ev != states.SuccessorReady {
		d.endLineage()
		d.o.Log.Error("no successor after the first one died: the next client starts a daemon", "err", r.cause)
		return
	}
	d.successor = r.child
	_ = Notify("MAINPID=" + strconv.Itoa(r.child.Process.Pid))
	d.o.Log.Info("another successor serves", "pid", r.child.Process.Pid)
}
