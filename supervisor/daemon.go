// Package supervisor runs the kache daemon: one goroutine owns the state
// machine built by package transitions, and everything else (RPC handlers,
// the idle timer, signals, the binary watcher, the drain) sends it events.
// It also holds the process plumbing the daemon and its clients share: the
// run lock, the state file, the listener, spawning and the log.
package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/transitions"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/looplab/fsm"
)

// Why Run returned. main turns these into exit codes (docs/exit-codes.md).
var (
	// ErrAlreadyRunning: another daemon holds the run lock or answers on the
	// socket. Not a failure: a service manager must not loop on it.
	ErrAlreadyRunning = errors.New("a kache daemon is already running")
	// ErrEpochStale: the daemon exited because a newer kache binary exists;
	// a service manager restarts it with the new binary.
	ErrEpochStale = errors.New("exited for a newer kache binary")
	// ErrForced: a second signal cut the drain short.
	ErrForced = errors.New("forced exit before the drain finished")
)

// Options configure one daemon run. Zero values of the seams pick the real thing.
type Options struct {
	Paths     config.Paths
	Config    config.Config
	Version   string
	Exe       string // the kache client binary this daemon belongs to
	DaemonExe string // this kache-daemon binary
	Epoch     int64  // build epoch of the pair: the newer mtime, ns
	// InputFingerprint is config.InputFingerprint of the daemon's
	// environment, stamped on every answer.
	InputFingerprint string
	Build            string // Go build ID of this kache-daemon (supervisor/identity.go)
	// NoHandover takes the old path on an update (drain, exit 75) instead of
	// handing over: KACHE_NO_HANDOVER=1, for comparing the two.
	NoHandover bool
	// Getenv is the environment the configuration was loaded from, for
	// reloading it when config.toml changes; nil: no config watcher.
	Getenv  func(string) string
	Log     *slog.Logger
	LogPath string // shown in status; empty when logging only to stderr

	// Signals delivers SIGTERM/SIGINT; nil installs signal.Notify.
	Signals <-chan os.Signal
	// Remote builds the remote from the config; nil uses NewRemote.
	Remote func(ctx context.Context, c config.Config) (uploader.Remote, error)
	// WatchBinary turns the fsnotify watcher on the binary on or off.
	WatchBinary bool
	// Successor waits up to this long for the run lock instead of exiting
	// at once: the daemon started while an old one drains (see Handoff).
	Successor time.Duration
	// Inherit is the listener and run lock a daemon handing over passed
	// to this one (TakeInherited); nil: bind and lock ourselves.
	Inherit *Inherited
	// StartedBy is why this daemon was started, as StartedByEnv says.
	StartedBy string
}

// event is a message to the loop: a state-machine event and why it happened.
type event struct {
	ev    states.Event
	cause string
}

// Daemon is one running daemon. Only the loop goroutine touches machine.
type Daemon struct {
	o          Options
	machine    *fsm.FSM
	events     chan event
	sigs       <-chan os.Signal // SIGTERM/SIGINT, caught from the start of Run
	notified   chan os.Signal   // the channel given to signal.Notify, if any
	pool       *uploader.Pool
	spoolWatch *spoolWatch // nil when the spool cannot be watched
	trim       *trimmer
	remote     uploader.Remote // nil: no remote configured
	srv        *rpc.Server
	ln         net.Listener
	lock       *runlock.Lock

	activated     bool
	restartReason string // from the restart file, when a restart brought us up
	started       time.Time
	activity      activity

	mu     sync.Mutex // guards cur and builds, read by RPC handlers
	cur    snapshot
	next   snapshot // set by the enter callback, published by fire (loop only)
	builds buildStats

	draining    bool         // a drain has been started
	exitVia     states.State // the draining state the daemon left through
	forced      bool         // a second signal cut the drain short
	signalCount int          // SIGTERM/SIGINT received; the second forces
	drainDone   chan uploader.DrainReport

	handoverDone chan handoverResult // the hand-over goroutine's outcome
	handingOver  bool                // that goroutine runs (loop only)
	successor    *spawn.Child        // the successor that serves now (loop only)
	retry        *retryTimer         // backoff after a failed hand-over (loop only)
	trigger      states.Event        // the event that asked for the hand-over (loop only)
	atPath       pathBuild           // build ID of the kache-daemon at our path, by its stat
	cfgErr       string              // why the last config.toml change was refused; guarded by mu
	keptLn       *os.File            // a dup of the listener kept after the hand-over (respawn.go)
	respawning   bool                // another successor is being started (loop only)
	lineageOver  bool                // the successor exited on its own or another daemon serves: no respawn (loop only)
	served       bool                // this daemon became ready: the socket file is its to remove
	// handoverCancel cancels the hand-over goroutine (a stop overtook it).
	handoverCancel context.CancelFunc
	respawnDone    chan handoverResult
	handoverErr    string       // why the last hand-over failed; guarded by mu
	newerClient    atomic.Int64 // the newest client epoch that asked for a hand-over

	done    chan struct{} // closed when the loop returns
	report  uploader.DrainReport
	exitRec *statefile.ExitRecord   // why it stopped, written by close
	hist    *history.Writer         // the lifecycle history; nil until the run lock is ours
	totals  atomic.Pointer[lasting] // the counters across restarts; nil until then too
}

// snapshot is the state as status shows it.
type snapshot struct {
	state states.State
	since time.Time
	cause string
}

// Run starts a daemon and blocks until it has stopped. A nil error is a
// clean exit (stop, signal, idle); see the Err* values for the others.
func Run(ctx context.Context, o Options) error {
	d, err := newDaemon(o)
	if err != nil {
		return err
	}
	// Signals are caught before the socket answers: a client that sees the
	// daemon and signals it must reach the drain, not the default action.
	d.sigs = d.signals()
	defer d.stopSignals()
	if err := d.open(ctx); err != nil {
		d.close()
		return err
	}
	d.recordStart()
	return d.loop(ctx)
}

func newDaemon(o Options) (*Daemon, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Remote == nil {
		o.Remote = NewRemote
	}
	d := &Daemon{o: o, events: make(chan event, 64), started: time.Now(),
		drainDone: make(chan uploader.DrainReport, 1), done: make(chan struct{}),
		handoverDone: make(chan handoverResult, 1), respawnDone: make(chan handoverResult, 1), retry: newRetryTimer()}
	d.cur = snapshot{state: states.Starting, since: d.started, cause: "process started"}
	d.activity.init(d.started)
	d.trim = newTrimmer()
	d.machine = transitions.NewDaemon(d.callbacks())
	return d, nil
}

// callbacks are the machine's hooks. looplab/fsm ignores a key it does not
// recognise, so a test checks each with transitions.CheckDaemonCallbacks.
func (d *Daemon) callbacks() fsm.Callbacks {
	return fsm.Callbacks{"enter_state": d.onEnter}
}

// onEnter records and logs every state change. It runs inside fsm.Event on
// the loop goroutine and does no I/O beyond the log line.
func (d *Daemon) onEnter(_ context.Context, e *fsm.Event) {
	cause := ""
	if len(e.Args) > 0 {
		cause, _ = e.Args[0].(string)
	}
	if e.Event == string(states.Forced) {
		d.forced = true
	}
	if e.Dst == string(states.HandingOver) {
		d.trigger = states.Event(e.Event)
	}
	if to := states.State(e.Dst); to.Draining() {
		d.exitVia = to // the last draining state decides the exit: idle, then a binary change, is epoch-stale
	}
	d.next = snapshot{state: states.State(e.Dst), since: time.Now(), cause: cause}
	d.o.Log.Info("state changed", "from", e.Src, "to", e.Dst, "event", e.Event, "cause", cause)
}

// state is the current snapshot; safe from any goroutine.
func (d *Daemon) state() snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// send hands an event to the loop. It never blocks past the daemon's end.
func (d *Daemon) send(ev states.Event, cause string) {
	select {
	case d.events <- event{ev, cause}:
	case <-d.done:
	}
}

// fire applies one event on the loop goroutine. An event that does not
// apply in the current state (a second stop while draining) is logged at
// debug and ignored: it is not an error for the caller.
func (d *Daemon) fire(ctx context.Context, e event) {
	err := d.machine.Event(ctx, string(e.ev), e.cause)
	var inv fsm.InvalidEventError
	var noT fsm.NoTransitionError
	switch {
	case err == nil:
		// The state file first, then what status answers: whoever sees a
		// state over the socket finds it in the file too.
		d.writeState(d.next)
		d.recordState(d.cur, d.next, string(e.ev))
		d.mu.Lock()
		d.cur = d.next
		d.mu.Unlock()
	case errors.As(err, &inv), errors.As(err, &noT):
		d.o.Log.Debug("event ignored", "event", e.ev, "state", d.machine.Current(), "cause", e.cause)
	default:
		d.o.Log.Error("state machine", "event", e.ev, "err", err)
	}
}

// writeState mirrors the snapshot into the state file for readers that
// cannot reach the socket (restart, status of a wedged daemon).
func (d *Daemon) writeState(s snapshot) {
	if d.successor != nil {
		return // the file is the successor's now
	}
	rec := statefile.StateRecord{Pid: os.Getpid(), Version: d.o.Version, Epoch: d.o.Epoch, Exe: d.o.Exe,
		State: string(s.state), StateSince: s.since, Cause: s.cause, StartedAt: d.started,
		Socket: d.o.Paths.Socket, Log: d.o.LogPath, RestartReason: d.restartReason}
	if err := statefile.WriteState(d.o.Paths.StateFile(), rec); err != nil {
		d.o.Log.Warn("write state file", "err", err)
	}
}
