package receipt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/rpc"
)

// every is how often the wait looks at the spool again.
const every = 50 * time.Millisecond

// minReadBack is the least time the read-back gets, even past the
// deadline the wait for the uploads used up.
const minReadBack = 5 * time.Second

// Flush takes what was handed over before now, starts the daemon through
// w (its crash-loop breaker) if intents wait and none answers, waits up to
// timeout for each to settle, reads the confirmed ones back, and records
// that this flush ended, so the next reports only what finished after it.
// An error is a flush that could not go on (no daemon, no remote, ctx);
// what is merely failed or pending is in the items (Tally, Report.Err).
func Flush(ctx context.Context, w *daemonctl.Wrapper, p config.Paths, timeout time.Duration) ([]*Item, error) {
	deadline := time.Now().Add(timeout)
	items := snapshot(p, lastFlush(p))
	if err := wait(ctx, w, p, items, deadline); err != nil {
		return nil, err
	}
	if err := confirm(ctx, w, items, deadline); err != nil {
		return nil, daemonctl.WithLog(p, err)
	}
	mark(p, time.Now()) // what finished by now is receipted here, not again next time
	return items, nil
}

// wait polls the spool until no item is pending or the deadline passes,
// starting the daemon first if any is pending.
func wait(ctx context.Context, w *daemonctl.Wrapper, p config.Paths, items []*Item, deadline time.Time) error {
	if pending(items) == 0 {
		return nil
	}
	if err := ensureServing(ctx, w); err != nil {
		return daemonctl.WithLog(p, err)
	}
	err := poll.Until(ctx, poll.Real, every, max(time.Until(deadline), time.Nanosecond), func() bool {
		for _, it := range items {
			if it.Status == Pending {
				settle(p, it)
			}
		}
		return pending(items) == 0
	})
	if errors.Is(err, poll.ErrTimeout) {
		return nil // what is still pending is reported as such
	}
	return err
}

// ensureServing starts the daemon (through the crash-loop breaker) if none
// answers, and refuses to wait on one with no remote.
func ensureServing(ctx context.Context, w *daemonctl.Wrapper) error {
	st, err := w.Client.Status(ctx)
	if rpc.Offline(err) {
		if serr := w.StartGuarded(ctx); serr != nil {
			return fmt.Errorf("%w: intents wait but no daemon could be started: %v", daemonctl.ErrNotRunning, serr)
		}
		st, err = w.Client.Status(ctx)
	}
	if err != nil {
		return err
	}
	if st.Remote == "none" {
		return fmt.Errorf("%w: the daemon has no remote configured, so nothing can be confirmed: set [remote] dir or [s3] bucket (KACHE_REMOTE_DIR, KACHE_S3_BUCKET)", ErrPending)
	}
	return nil
}

// confirm reads every confirmed entry back from the remote through the
// daemon: its receipt. An entry the remote does not have after all is
// failed, not confirmed.
//
// The read-back is bounded by flush's own deadline, not by the client's
// default call timeout; what it could not read back in time is pending,
// so flush ends only with its documented outcomes.
func confirm(ctx context.Context, w *daemonctl.Wrapper, items []*Item, deadline time.Time) error {
	var keys []string
	byKey := map[string]*Item{}
	for _, it := range items {
		if it.Status == Confirmed {
			keys, byKey[it.Key] = append(keys, it.Key), it
		}
	}
	for chunk := range slices.Chunk(keys, rpc.MaxReceiptKeys) {
		w.Client.CallTimeout = max(time.Until(deadline), minReadBack)
		rs, err := w.Client.Receipts(ctx, chunk)
		if rpc.Offline(err) { // the daemon exited meanwhile (idle): start one to ask
			if serr := w.StartGuarded(ctx); serr != nil {
				return fmt.Errorf("%w: read the receipts back: %v", daemonctl.ErrNotRunning, serr)
			}
			rs, err = w.Client.Receipts(ctx, chunk)
		}
		if err != nil {
			unread(chunk, byKey, err)
			continue
		}
		for _, r := range rs {
			if it := byKey[r.Key]; it != nil {
				it.Remote, it.Object, it.Bytes, it.SHA256, it.Error = r.Remote, r.Object, r.Bytes, r.SHA256, r.Error
				if r.Error != "" {
					it.Status = Failed
				}
			}
		}
	}
	return nil
}

// unread marks keys whose read-back failed as pending, with why.
func unread(keys []string, byKey map[string]*Item, err error) {
	for _, k := range keys {
		it := byKey[k]
		it.Status, it.Error = Pending, "uploaded, but the read-back did not finish: "+err.Error()
	}
}
