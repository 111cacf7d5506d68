package supervisor

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/service"
	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/uploader"
)

// shutdownGrace bounds closing the RPC server after the drain.
const shutdownGrace = 2 * time.Second

// loop is the one goroutine that owns the state machine. It returns when
// the machine reaches Stopped, with the reason as an error (nil = clean).
func (d *Daemon) loop(ctx context.Context) error {
	defer close(d.done)
	defer d.close()
	// looplab/fsm silently drops a transition whose context is cancelled,
	// so the machine runs on a context that ignores cancellation; done
	// still reports it, once (a closed channel would spin the loop).
	done := ctx.Done()
	ctx = context.WithoutCancel(ctx)
	idle := newIdleTimer(d.o.Config.IdleTimeout)
	defer idle.stop()
	stopWatch := d.watchBinary() // before ready: a client may replace the binary at once
	defer d.watchConfig()()
	d.fire(ctx, event{states.Ready, "listening on " + d.o.Paths.Socket})
	d.served = true
	_ = Notify("READY=1\nSTATUS=running")
	if err := spawn.NotifyReady(); err != nil {
		d.o.Log.Warn("cannot tell the starting client we are ready", "err", err)
	}
	d.trim.activity() // start-up itself: trim once it is over
	defer stopWatch()
	for d.state().state != states.Stopped {
		select {
		case e := <-d.events:
			if d.gate(e) {
				d.fire(ctx, e)
			}
		case r := <-d.handoverDone:
			d.onHandover(ctx, r)
		case <-d.successorExited():
			d.onSuccessorLost()
		case r := <-d.respawnDone:
			d.onRespawn(r)
		case <-d.retry.C():
			d.retry.t = nil
			d.fire(ctx, event{states.HandoverRetry, "retry after a failed hand-over: " + d.lastHandoverErr()})
		case s := <-d.sigs:
			d.onSignal(ctx, s)
		case <-idle.C():
			d.onIdle(ctx, idle)
		case <-d.trim.wake:
			d.trim.t.Reset(quietFor)
		case <-d.trim.t.C:
			d.onTrimTimer()
		case rep := <-d.drainDone:
			d.report = rep
			d.fire(ctx, event{states.DrainDone, drainCause(rep)})
		case <-done:
			done = nil
			d.fire(ctx, event{states.Signaled, "context cancelled"})
		}
		d.afterEvent()
	}
	d.awaitHelpers()
	return d.finish()
}

// awaitHelpers waits, bounded, for a hand-over or a respawn still running
// when the machine stopped. A hand-over was overtaken by a stop (and
// cancelled): the successor it may have started is stopped, since no
// daemon outlives a stop. A respawn replaces a successor that died: the
// daemon it starts serves on after this one has drained.
func (d *Daemon) awaitHelpers() {
	limit := time.After(successorReadyTimeout + 2*childStopGrace)
	for d.handingOver || d.respawning {
		select {
		case r := <-d.handoverDone:
			d.onHandover(context.Background(), r)
		case r := <-d.respawnDone:
			d.onRespawn(r)
		case <-limit:
			d.o.Log.Error("a hand-over still runs at exit", "hand_over", d.handingOver, "respawn", d.respawning)
			return
		}
	}
}

// afterEvent starts the slow work a state asks for, outside the FSM
// callbacks: entering a draining state starts exactly one drain.
func (d *Daemon) afterEvent() {
	s := d.state()
	if s.state == states.HandingOver && !d.handingOver {
		d.handingOver = true
		d.startHandover()
	}
	if s.state.Draining() && s.state != states.HandedOver {
		d.cancelHandover() // a stop (or signal) overtook the hand-over
	}
	if !s.state.Draining() || d.draining {
		return
	}
	d.draining = true
	timeout := d.o.Config.DrainTimeout
	if s.state == states.HandedOver {
		// Not STOPPING=1: systemd follows the successor (MAINPID) now.
		go func() { d.drainDone <- d.drainHandedOver(timeout) }()
		return
	}
	_ = Notify("STOPPING=1\nSTATUS=draining uploads")
	go func() { d.drainDone <- d.pool.Drain(timeout) }()
}

// drainHandedOver stops accepting (the successor does), answers what was
// accepted already, then finishes only the in-flight uploads.
func (d *Daemon) drainHandedOver(timeout time.Duration) uploader.DrainReport {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	_ = d.srv.Handover(ctx)
	cancel()
	return d.pool.HandOver(timeout)
}

// onSignal: the first SIGTERM/SIGINT drains, a second forces the exit.
func (d *Daemon) onSignal(ctx context.Context, s os.Signal) {
	d.signalCount++
	switch {
	case d.signalCount > 1:
		d.fire(ctx, event{states.Forced, "second signal " + s.String()})
	case d.state().state.Draining():
		// Already on its way out (stop, idle, epoch): keep draining.
		d.o.Log.Warn("signal while draining; a second one forces the exit", "signal", s.String())
	default:
		d.fire(ctx, event{states.Signaled, "signal " + s.String()})
	}
}

// signals returns the signal channel, installing signal.Notify unless a
// test supplied its own.
func (d *Daemon) signals() <-chan os.Signal {
	if d.o.Signals != nil {
		return d.o.Signals
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	d.notified = ch
	return ch
}

// stopSignals undoes signal.Notify, so an in-process caller's later
// signals get their default action again.
func (d *Daemon) stopSignals() {
	if d.notified != nil {
		signal.Stop(d.notified)
	}
}

func drainCause(r uploader.DrainReport) string {
	s := "drained " + itoa(r.Drained) + " uploads, " + itoa(r.Left) + " left for the next start"
	if r.RemoteDown {
		s += " (the remote is unreachable: the drain ended at once)"
	}
	return s
}

// finish writes the exit record and maps how the machine got to Stopped
// onto Run's result.
func (d *Daemon) finish() error {
	if d.forced && d.draining {
		d.abortDrain()
	}
	rec := statefile.ExitRecord{Pid: os.Getpid(), Reason: d.exitReason(), Drained: d.report.Drained,
		Left: d.report.Left, Failed: d.report.Failed, At: time.Now(), Message: d.state().cause,
		RemoteDown: d.report.RemoteDown}
	if d.forced { // counted now, not from the pool's cached count: the drain was cut short
		rec.Left = spool.Count(d.o.Paths.SpoolDir())
	}
	switch { // the code main will exit with for the error returned below
	case d.exitVia == states.HandedOver && !d.forced:
		rec.Code = 0
	case d.forced:
		rec.Code = service.ExitCrash
	case d.exitVia == states.EpochStale:
		rec.Code = service.ExitEpochStale
	}
	d.exitRec = &rec // written by close, once the socket and state file are gone
	d.o.Log.Info("daemon stopped", "reason", rec.Reason, "drained", rec.Drained, "left", rec.Left)
	switch {
	case d.forced:
		return ErrForced
	case d.exitVia == states.EpochStale:
		return ErrEpochStale
	}
	return nil
}

// exitReason names why the daemon stopped, for the exit record and status.
func (d *Daemon) exitReason() string {
	switch {
	case d.forced:
		return "forced"
	case d.exitVia == states.IdleExiting:
		return "idle"
	case d.exitVia == states.EpochStale:
		return "epoch_stale"
	case d.exitVia == states.HandedOver:
		return "handed_over"
	}
	return "stop" // through draining: a shutdown request or a signal
}

func itoa(n int) string { return strconv.Itoa(n) }

// abortDrain cuts a drain short on a forced exit and waits, bounded, for it
// to unwind, so no upload is still talking to the remote when it is closed.
func (d *Daemon) abortDrain() {
	d.pool.Abort()
	select {
	case rep := <-d.drainDone:
		d.report = rep
	case <-time.After(abortGrace):
		d.o.Log.Error("the cancelled drain did not return", "grace", abortGrace)
	}
}

// abortGrace bounds abortDrain.
const abortGrace = 10 * time.Second
