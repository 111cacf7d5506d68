// Package states names the daemon's states and the events that move it
// between them. The transition table that joins them is in package
// transitions; the goroutine that owns the machine is in package supervisor.
package states

// State is where the daemon is in its life.
type State string

// The daemon's states.
const (
	// Starting: config read, lock taken, listener being opened, spool replayed.
	Starting State = "starting"
	// Running: serving requests and uploading.
	Running State = "running"
	// Draining: asked to stop (shutdown request or signal); in-flight uploads
	// get up to the drain timeout, the rest stay in the spool.
	Draining State = "draining"
	// IdleExiting: no request and no upload work for the idle timeout; drains
	// (trivially, nothing is queued) and exits 0.
	IdleExiting State = "idle_exiting"
	// EpochStale: a newer kache binary exists (a newer client, or the binary
	// on disk changed); drains and exits with the code that makes a service
	// manager start the new binary.
	EpochStale State = "epoch_stale"
	// HandingOver: a newer binary is on disk at the daemon's own path; the
	// daemon starts it as its successor, passing the listening socket and
	// the run lock, and keeps serving everything until the successor says
	// it is ready.
	HandingOver State = "handing_over"
	// HandedOver: the successor serves; this daemon has stopped accepting
	// and drains only its in-flight uploads (claimed, so the successor
	// leaves them alone), then exits 0.
	HandedOver State = "handed_over"
	// Stopped: the drain is over; the process exits.
	Stopped State = "stopped"
)

// All lists every state, in the order they are documented.
var All = []State{Starting, Running, Draining, IdleExiting, EpochStale, HandingOver, HandedOver, Stopped}

// Event is something that happened to the daemon.
type Event string

// The daemon's events.
const (
	Ready         Event = "ready"          // listener open, spool replayed
	StopRequested Event = "stop_requested" // a shutdown request
	Signaled      Event = "signaled"       // SIGTERM or SIGINT
	IdleTimeout   Event = "idle_timeout"   // the idle timer expired with nothing to do
	ClientNewer   Event = "client_newer"   // a request came from a newer binary
	ClientBuild   Event = "client_build"   // a request came from another build, now at our path
	BinaryChanged Event = "binary_changed" // the watcher saw the binary replaced
	ConfigChanged Event = "config_changed" // config.toml changed to a valid, different configuration
	DrainDone     Event = "drain_done"     // the drain finished or hit its cap
	Forced        Event = "forced"         // a second signal: exit now

	SuccessorReady      Event = "successor_ready"      // the successor serves on the passed socket
	HandoverFailed      Event = "handover_failed"      // the successor exited or missed its deadline
	HandoverRetry       Event = "handover_retry"       // the backoff after a failed hand-over passed
	HandoverUnavailable Event = "handover_unavailable" // no newer binary at our path: the old drain-and-exit
	BinarySame          Event = "binary_same"          // the binary at our path is our own build: nothing to do
)

// AllEvents lists every event.
var AllEvents = []Event{Ready, StopRequested, Signaled, IdleTimeout, ClientNewer, ClientBuild, BinaryChanged, ConfigChanged, DrainDone, Forced,
	SuccessorReady, HandoverFailed, HandoverRetry, HandoverUnavailable, BinarySame}

// Draining reports whether s is one of the states that drain before exit.
func (s State) Draining() bool {
	return s == Draining || s == IdleExiting || s == EpochStale || s == HandedOver
}

// RestartStep is where `kache daemon restart` is in its escalation.
type RestartStep string

// The restart escalation's steps: tier 1 kickstarts the service manager,
// tier 2 kills lingering daemons and wipes their files, tier 3 spawns.
const (
	RestartCheck     RestartStep = "check"
	RestartKickstart RestartStep = "kickstart" // tier 1
	RestartKill      RestartStep = "kill"      // tier 2
	RestartSpawn     RestartStep = "spawn"     // tier 3
	RestartDone      RestartStep = "done"
	RestartFailed    RestartStep = "failed"
)

// RestartEvent is the outcome of a restart step.
type RestartEvent string

// The restart escalation's events.
const (
	ServiceInstalled RestartEvent = "service_installed"
	NoService        RestartEvent = "no_service"
	Recovered        RestartEvent = "recovered"
	StepFailed       RestartEvent = "step_failed"
	Cleared          RestartEvent = "cleared"
)
