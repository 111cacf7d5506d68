package daemonctl

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/rpc"
)

// Wrapper applies the build wrapper's offline rules on top of rpc.Client. The
// wrapper sits on the build's critical path, so none of these calls ever
// fails a build:
//   - RemoteCheck never starts the daemon: offline is an immediate miss;
//   - Upload (re)starts a downed daemon and re-sends; if it cannot, the
//     intent already written to the spool waits for the next daemon;
//   - Prefetch and BuildStarted are skipped while the daemon is offline.
type Wrapper struct {
	Client *rpc.Client
	// Start starts a daemon and returns once it answers. Nil: never start.
	Start func(ctx context.Context) error
	// Breaker guards Start against a crash loop; nil: no breaker.
	Breaker StartBreaker
	// Tries bounds the start-and-resend attempts of Upload (default 3).
	Tries int
	// Handoff starts a successor that waits for a draining daemon to exit
	// and returns at once; the spooled intents are the successor's work.
	// Nil: Upload waits through Start instead.
	Handoff func(ctx context.Context) error
	// GaveWayTo, if set, is the newer installation's epoch the last daemon
	// exited for, when that was a moment ago (RecentGiveWay); 0 if none.
	GaveWayTo func() int64
	// BuildPid is the build the uploads come from (cargo, the go
	// command): the daemon's uploads wait until it ends. 0: none.
	BuildPid int
}

// StartBreaker is the crash-loop breaker around auto-start: once starts
// keep failing, clients stop trying for a cool-down. Implemented by the
// cli over a file so that every client process shares it.
type StartBreaker interface {
	// Allow reports whether a start may be tried now, and why not.
	Allow() (bool, string)
	// Record notes a start attempt's outcome.
	Record(err error)
}

// RemoteCheck asks for key with the given deadline. Offline or any error is
// a miss, with the reason returned for the caller's stderr.
func (w *Wrapper) RemoteCheck(ctx context.Context, key string, deadline time.Duration) (found bool, reason error) {
	found, err := w.Client.RemoteCheck(ctx, key, deadline)
	if err != nil {
		return false, err
	}
	return found, nil
}

// UploadOutcome says what became of an upload call.
type UploadOutcome struct {
	Queued    int   // entries the daemon took
	Started   bool  // a daemon was (re)started for it
	HandedOff bool  // the daemon was draining: a successor will take the intents
	Kept      error // non-nil: the intents stay in the spool, and why
}

// Upload sends entries whose intents are already in the spool, starting
// the daemon if it is offline, with bounded, jittered retries.
func (w *Wrapper) Upload(ctx context.Context, entries []rpc.UploadEntry) UploadOutcome {
	var out UploadOutcome
	res, err := w.Client.UploadFrom(ctx, entries, w.BuildPid)
	for try := 0; rpc.KindOf(err) == rpc.ErrBusy && try < w.tries(); try++ {
		// At its connection or buffer cap: a moment later it has room.
		sleepJitter(ctx, try)
		res, err = w.Client.UploadFrom(ctx, entries, w.BuildPid)
	}
	if way := givingWayTo(err); way > 0 && w.Client.Epoch > 0 && way > w.Client.Epoch {
		// The daemon exits for a newer installation: its daemon, which
		// that installation's next command starts, takes the intents.
		out.HandedOff = true
		return out
	}
	if rpc.KindOf(err) == rpc.ErrShuttingDown && w.Handoff != nil {
		// A draining daemon can take up to its drain timeout to exit; the
		// build must not wait for it.
		if err = w.Handoff(ctx); err == nil {
			out.HandedOff = true
			return out
		}
	}
	if rpc.Offline(err) && w.newerGone() {
		// The daemon exited a moment ago for a newer installation, whose
		// next command starts that installation's daemon: starting an
		// older one here would only make it give way again (a flap).
		out.HandedOff = true
		return out
	}
	for try := 0; err != nil && rpc.Offline(err) && try < w.tries(); try++ {
		if serr := w.start(ctx); serr != nil {
			err = serr
			break
		}
		out.Started = true
		res, err = w.Client.UploadFrom(ctx, entries, w.BuildPid)
		if err != nil && rpc.Offline(err) {
			sleepJitter(ctx, try)
		}
	}
	if err != nil {
		out.Kept = err
		return out
	}
	out.Queued = res.Queued
	return out
}

// newerGone reports whether the last daemon exited for an installation
// newer than this client's, a moment ago.
func (w *Wrapper) newerGone() bool {
	if w.GaveWayTo == nil || w.Client.Epoch <= 0 {
		return false
	}
	way := w.GaveWayTo()
	return way > 0 && way > w.Client.Epoch
}

// giveWayWindow is how long after a daemon gave way to a newer
// installation an older client leaves its intents to that installation's
// daemon instead of starting its own. Past it, the newer installation may
// be gone (a downgrade): the older client starts a daemon as always.
const giveWayWindow = time.Minute

// RecentGiveWay is the epoch the last daemon gave way to, if it exited
// for a newer installation within giveWayWindow of now; else 0.
func RecentGiveWay(p config.Paths, now time.Time) int64 {
	rec, err := LastExit(p)
	if err != nil || rec.GaveWayTo == 0 || now.Sub(rec.At) > giveWayWindow || now.Before(rec.At.Add(-time.Minute)) {
		return 0
	}
	return rec.GaveWayTo
}

// givingWayTo is the epoch a shutting-down daemon exits for, or 0.
func givingWayTo(err error) int64 {
	var e *rpc.Error
	if errors.As(err, &e) && e.Kind == rpc.ErrShuttingDown {
		return e.GivingWayTo
	}
	return 0
}

// StartGuarded starts the daemon through the crash-loop breaker, for
// commands other than Upload that promise a running daemon.
func (w *Wrapper) StartGuarded(ctx context.Context) error { return w.start(ctx) }

// start runs Start through the breaker.
func (w *Wrapper) start(ctx context.Context) error {
	if w.Start == nil {
		return errors.New("daemon offline and auto-start is off")
	}
	if w.Breaker != nil {
		if ok, why := w.Breaker.Allow(); !ok {
			return errors.New(why)
		}
	}
	err := w.Start(ctx)
	if w.Breaker != nil {
		w.Breaker.Record(err)
	}
	return err
}

func (w *Wrapper) tries() int {
	if w.Tries > 0 {
		return w.Tries
	}
	return 3
}

// sleepJitter waits 50-150 ms times the attempt number, so many clients
// that found the daemon gone do not retry in lockstep.
func sleepJitter(ctx context.Context, try int) {
	d := time.Duration(try+1) * time.Duration(50+rand.IntN(100)) * time.Millisecond
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Prefetch asks for keys in the background; skipped while offline.
func (w *Wrapper) Prefetch(ctx context.Context, keys []string) (skipped bool, err error) {
	err = w.Client.Prefetch(ctx, keys)
	if rpc.Offline(err) {
		return true, err
	}
	return false, err
}

// BuildStarted records a build session; skipped while offline.
func (w *Wrapper) BuildStarted(ctx context.Context, session string) (skipped bool, err error) {
	err = w.Client.BuildStarted(ctx, session)
	if rpc.Offline(err) {
		return true, err
	}
	return false, err
}
