package uploader

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the pool for `kache stats` and status.
type Stats struct {
	UploadsCompleted int64
	UploadsSkipped   int64 // already on the remote
	UploadsFailed    int64 // moved to failed/ by this daemon
	BytesUploaded    int64
	Downloads        int64
	BytesDownloaded  int64
	RemoteHits       int64
	RemoteMisses     int64
	Queued           int
	InFlight         int
	FailedIntents    int    // files in failed/, from any daemon
	Spool            int    // intent files in the spool known to this daemon
	Breaker          string // BreakerClosed, BreakerOpen, BreakerHalfOpen or BreakerPaused
	// PausedReason says why uploads are paused (the remote refused the
	// credentials, the clock is skewed, the bucket is missing), "" when
	// they are not; the pool probes again on a schedule.
	PausedReason string
}

// counters are the pool's monotonic totals since it was made.
type counters struct {
	completed, skipped, failed, bytesUp atomic.Int64
	downloads, bytesDown, hits, misses  atomic.Int64
	lastActive                          atomic.Int64 // unix ns
}

// Stats returns the counters and the queue as they are now. FailedIntents
// lists failed/, which stays small: it holds only permanent failures.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	queued, inFlight, spool := len(p.queue), len(p.inflight), len(p.onDisk)
	p.mu.Unlock()
	c := &p.c
	return Stats{
		UploadsCompleted: c.completed.Load(), UploadsSkipped: c.skipped.Load(),
		UploadsFailed: c.failed.Load(), BytesUploaded: c.bytesUp.Load(),
		Downloads: c.downloads.Load(), BytesDownloaded: c.bytesDown.Load(),
		RemoteHits: c.hits.Load(), RemoteMisses: c.misses.Load(),
		Queued: queued, InFlight: inFlight, Spool: spool,
		FailedIntents: countIntents(p.o.FailedDir),
		Breaker:       p.breaker.State(),
		PausedReason:  p.breaker.PausedReason(),
	}
}

// Progress reports the uploads queued and in flight, for a supervisor
// showing a drain as it goes.
func (p *Pool) Progress() (queued, inFlight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue), len(p.inflight)
}

// Busy reports whether uploads are queued or in flight: work that holds off
// the daemon's idle exit.
func (p *Pool) Busy() bool {
	q, f := p.Progress()
	return q+f > 0
}

// LastActive is when a job last finished or was enqueued (zero if never).
// The idle timer counts from max(last request, LastActive).
func (p *Pool) LastActive() time.Time {
	ns := p.c.lastActive.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (p *Pool) touch() { p.c.lastActive.Store(time.Now().UnixNano()) }
