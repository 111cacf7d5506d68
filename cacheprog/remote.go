package cacheprog

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// remotePause is how long remote checks stop after one failed: with the
// daemon down or the remote failing, most gets are immediate misses, and
// checks resume by themselves once a daemon answers (an upload may have
// started one).
const remotePause = time.Second

// remote asks the daemon about local misses, if there is a daemon.
type remote struct {
	d        Daemon
	deadline time.Duration
	mu       sync.Mutex
	pausedTo time.Time
	errors   int   // failed checks
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
	if err != nil {
		r.mu.Lock()
		r.pausedTo = time.Now().Add(remotePause)
		r.errors++
		r.lastErr = err
		r.mu.Unlock()
		return false
	}
	return found
}

// problem says why remote checks failed, if any did.
func (r *remote) problem() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errors == 0 {
		return nil
	}
	return fmt.Errorf("%d remote checks failed (%d skipped after): %v", r.errors, r.skipped, r.lastErr)
}
