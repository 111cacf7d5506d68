package uploader

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
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
	Spool            int    // intent files in the spool, whoever wrote them
	Synced           int64  // intents made durable by the group commit
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
	yielded                             atomic.Int64 // jobs left to the daemon holding their claim
	latency                             latency      // of confirmed uploads
}

// Stats returns the counters and the queue as they are now. FailedIntents
// lists failed/, which stays small: it holds only permanent failures.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	queued, inFlight := len(p.queue), len(p.inflight)
	p.mu.Unlock()
	c := &p.c
	return Stats{
		UploadsCompleted: c.completed.Load(), UploadsSkipped: c.skipped.Load(),
		UploadsFailed: c.failed.Load(), BytesUploaded: c.bytesUp.Load(),
		Downloads: c.downloads.Load(), BytesDownloaded: c.bytesDown.Load(),
		RemoteHits: c.hits.Load(), RemoteMisses: c.misses.Load(),
		Queued: queued, InFlight: inFlight, Spool: p.spoolN.get(p.o.SpoolDir), Synced: p.syncer.synced.Load(),
		FailedIntents: spool.Count(p.o.FailedDir),
		Breaker:       p.breaker.State(),
		PausedReason:  p.breaker.PausedReason(),
	}
}

// Counters returns the monotonic counters only, reading no directory:
// cheap enough to poll every second.
func (p *Pool) Counters() Stats {
	c := &p.c
	return Stats{UploadsCompleted: c.completed.Load(), UploadsSkipped: c.skipped.Load(),
		UploadsFailed: c.failed.Load(), BytesUploaded: c.bytesUp.Load(),
		Downloads: c.downloads.Load(), BytesDownloaded: c.bytesDown.Load(),
		RemoteHits: c.hits.Load(), RemoteMisses: c.misses.Load()}
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
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)+len(p.inflight) > 0 || p.scanning || p.backlog && p.o.Remote != nil
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

// countCache is the spool's size, counted from the directory at most once
// a second (a status every second of a 100 000-intent spool must not list
// it every time), and again at once after a change.
type countCache struct {
	mu    sync.Mutex
	n     int
	at    time.Time
	valid bool
}

const (
	countTTL    = time.Second
	countMinAge = 20 * time.Millisecond // after a change, at most 50 counts a second
)

func (c *countCache) get(dir string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if age := time.Since(c.at); !c.valid && age > countMinAge || age > countTTL {
		c.n, c.at, c.valid = spool.Count(dir), time.Now(), true
	}
	return c.n
}

func (c *countCache) invalidate() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}
