package cacheprog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// remotePause is how long remote checks stop after one failed: with the
// daemon down or the remote failing, most gets are immediate misses, and
// checks resume by themselves once a daemon answers (an upload may have
// started one).
const remotePause = time.Second

// slowInARow is how many checks in a row may pass their deadline before
// checks pause: one large object still downloading is no reason to stop
// asking, a remote that answers nothing in time is.
const slowInARow = 3

// ErrSlow marks a remote check that passed its deadline (the download
// may still finish in the background), as opposed to one that failed.
var ErrSlow = errors.New("remote check passed its deadline")

// remote asks the daemon about local misses, if there is a daemon.
type remote struct {
	d        Daemon
	deadline time.Duration
	mu       sync.Mutex
	pausedTo time.Time
	slow     int   // checks in a row that passed their deadline
	failed   int   // failed checks
	skipped  int   // checks not made while paused
	lastErr  error // the last failure, for the record
}

// check reports whether key is now in the store, downloaded from the
// remote; any failure is a miss.
func (r *remote) check(ctx context.Context, key string) bool {
	if r.d == nil {
		return false
	}
	r.mu.Lock()
	paused := time.Now().Before(r.pausedTo)
	if paused {
		r.skipped++
	}
	r.mu.Unlock()
	if paused {
		return false
	}
	found, err := r.d.RemoteCheck(ctx, key, r.deadline)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.slow = 0
	case errors.Is(err, ErrSlow):
		r.slow++
		r.failed++
		r.lastErr = err
		if r.slow >= slowInARow {
			r.pausedTo = time.Now().Add(remotePause)
		}
	default:
		r.pausedTo = time.Now().Add(remotePause)
		r.failed++
		r.lastErr = err
	}
	return found && err == nil
}

// problem says why remote checks failed, if any did.
func (r *remote) problem() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed == 0 {
		return nil
	}
	return fmt.Errorf("%d remote checks failed (%d skipped after): %v", r.failed, r.skipped, r.lastErr)
}
