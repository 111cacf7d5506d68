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
	d.fire(ctx, event{ev: states.Ready, cause: "listening on " + d.o.Paths.Socket})
	d.served = true
	_ = Notify(notifyReady)
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
			if e.applied != nil {
				close(e.applied)
			}
		case r := <-d.handoverDone:
			d.onHandover(ctx, r)
		case <-d.successorExited():
			d.onSuccessorLost()
		case r := <-d.respawnDone:
			d.onRespawn(r)
		case <-d.retry.C():
			d.retry.t = nil
			d.fire(ctx, event{ev: states.HandoverRetry, cause: "retry after a failed hand-over: " + d.lastHandoverErr()})
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
			d.fire(ctx, event{ev: states.DrainDone, cause: drainCause(rep)})
		case <-done:
			done = nil
			d.fire(ctx, event{ev: states.Signaled, cause: "context cancelled"})
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
	_ = Notify(notifyStopping)
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
		d.fire(ctx, event{ev: states.Forced, cause: "second signal " + s.String()})
	case d.state().state.Draining():
		// Already on its way out (stop, idle, epoch): keep draining.
		d.o.Log.Warn("signal while draining; a second one forces the exit", "signal", s.String())
	default:
		d.fire(ctx, event{ev: states.Signaled, cause: "signal " + s.String()})
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

// outcome is how a run ends: the reason the exit record and status show,
// the code `daemon run` exits with, and the error Run returns for main.
type outcome struct {
	reason string
	code   int
	err    error
}

// outcomes maps the draining state the daemon stopped from onto its
// outcome; a forced exit (a second signal) is forcedOutcome from any state.
var outcomes = map[states.State]outcome{
	states.Draining:    {"stop", service.ExitClean, nil}, // a shutdown request or a signal
	states.IdleExiting: {"idle", service.ExitClean, nil},
	states.EpochStale:  {"epoch_stale", service.ExitEpochStale, ErrEpochStale},
	states.HandedOver:  {"handed_over", service.ExitClean, nil},
}

var forcedOutcome = outcome{"forced", service.ExitCrash, ErrForced}

// outcome is this run's, from the state it stopped from.
func (d *Daemon) outcome() outcome {
	if o, ok := outcomes[d.exitVia]; ok && !d.forced {
		return o
	}
	if d.forced {
		return forcedOutcome
	}
	return outcomes[states.Draining] // stopped before any drain began
}

// finish writes the exit record and returns Run's result.
func (d *Daemon) finish() error {
	if d.forced && d.draining {
		d.abortDrain()
	}
	out := d.outcome()
	rec := statefile.ExitRecord{Pid: os.Getpid(), Reason: out.reason, Code: out.code, Drained: d.report.Drained,
		Left: d.report.Left, Failed: d.report.Failed, At: time.Now(), Message: d.state().cause,
		RemoteDown: d.report.RemoteDown}
	if out.code == service.ExitEpochStale {
		rec.GaveWayTo = d.newerClient.Load()
	}
	if d.forced { // counted now, not from the pool's cached count: the drain was cut short
		rec.Left = spool.Count(d.o.Paths.SpoolDir())
	}
	d.exitRec = &rec // written by close, once the socket and state file are gone
	d.o.Log.Info("daemon stopped", "reason", rec.Reason, "drained", rec.Drained, "left", rec.Left)
	return out.err
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
