package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kunobi-ninja/kache/internal/cachekey"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// ErrNoRemote answers an upload or a remote check when no remote is
// configured. Nothing is touched: intents stay for a daemon that has one.
var ErrNoRemote = errors.New("no remote configured: set [remote] dir or [s3] bucket in config.toml (or KACHE_S3_BUCKET / KACHE_REMOTE_DIR); intents stay in the spool until a daemon has a remote")

// ErrDraining answers work offered after Drain began (or Start's context
// ended); the intent stays in the spool for the next daemon.
var ErrDraining = errors.New("uploads are draining for shutdown: intent left in the spool for the next daemon")

// Defaults for Options left zero.
const (
	DefaultWorkers          = 16
	DefaultRetryBase        = 200 * time.Millisecond
	DefaultRetryMax         = 30 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 10 * time.Second
	// drainGrace bounds the wait for workers and downloads to return once
	// they were cancelled; a remote that ignores cancellation cannot hold
	// the daemon's exit.
	drainGrace = 5 * time.Second
)

// Options configure a Pool. Zero values take the defaults above; FailedDir
// defaults to <SpoolDir>/failed, TempDir to tmp beside the spool
// (<cache_dir>/tmp for the daemon's <cache_dir>/upload-queue).
type Options struct {
	Remote              Remote // nil: no remote configured
	SpoolDir, FailedDir string
	StoreDir            string // local store that Fetch and Prefetch fill
	EventsFile          string // "" records no events
	Workers             int
	Log                 *slog.Logger
	RetryBase, RetryMax time.Duration
	BreakerThreshold    int // consecutive transient failures that open the breaker
	BreakerCooldown     time.Duration
	// TempDir holds directory archives while they upload; stale ones are
	// removed at Start. It must not be shared with another daemon.
	TempDir string
	// PauseRetry is the first wait before a paused remote is probed again
	// (default DefaultPauseRetry); see BreakerPaused.
	PauseRetry time.Duration
	// Worked, if set, is called after background work no request asked
	// for (the spare keeper making files), so that the daemon can give the
	// memory it took back once quiet again.
	Worked func()
}

func (o Options) withDefaults() Options {
	o.Workers = defaulted(o.Workers, DefaultWorkers)
	o.RetryBase = defaulted(o.RetryBase, DefaultRetryBase)
	o.RetryMax = max(defaulted(o.RetryMax, DefaultRetryMax), o.RetryBase)
	o.BreakerThreshold = defaulted(o.BreakerThreshold, DefaultBreakerThreshold)
	o.BreakerCooldown = defaulted(o.BreakerCooldown, DefaultBreakerCooldown)
	o.PauseRetry = defaulted(o.PauseRetry, DefaultPauseRetry)
	if o.FailedDir == "" {
		o.FailedDir = filepath.Join(o.SpoolDir, "failed")
	}
	if o.TempDir == "" {
		o.TempDir = filepath.Join(filepath.Dir(o.SpoolDir), "tmp")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

func defaulted[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// DrainReport says what a drain did.
type DrainReport struct {
	Drained int // uploads completed or skipped during the drain
	Left    int // intent files still in the spool, for the next daemon
	Failed  int // uploads that failed permanently during the drain
	// RemoteDown: the drain ended before its cap because the remote is
	// unreachable (the breaker open, no call in flight): nothing more
	// could be uploaded, and what is left waits in the spool.
	RemoteDown bool
}

// job is one upload, in the queue or in flight.
type job struct {
	Entry
	// again is an Enqueue of the same key that arrived while the job was in
	// flight and after its intent file was last settled: the client wrote a
	// fresh intent, so the key is queued again once this job is released.
	again *Entry
	// changed counts attempts that found the source changing under them.
	changed int
	// claim is held while the job is in flight (claim.go).
	claim *claim
	// local counts attempts that failed on this machine (LocalError).
	local int
	// since is when a worker took it, for the monitor's in-flight list.
	since time.Time
	// sent counts the bytes of this attempt the remote has read so far,
	// for the in-flight list's rate.
	sent atomic.Int64
}

// queueWindow bounds the jobs a pool holds in memory. The spool directory is
// the queue; memory holds a window of it, so 100 000 intents cost what 4096
// do, and the scanner refills the window from the directory as it empties.
const queueWindow = 4096

// Pool uploads the entries of the spool with a fixed set of workers. The
// in-memory window is a slice behind a mutex, so Enqueue never blocks an
// RPC handler; a one-slot channel wakes an idle worker, and each worker
// that takes a job passes the wake-up on while work remains.
type Pool struct {
	o       Options
	log     *slog.Logger
	breaker *Breaker
	calling atomic.Int64 // upload attempts talking to the remote now
	events  *eventlog.Log
	c       counters
	fetch   *fetcher

	ctx    context.Context // cancelled at the end of a drain, or by Start's ctx
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
	closed chan struct{} // closed when the drain begins

	scanWake chan struct{} // the scanner has intents to look for
	room     chan struct{} // the window has room again
	syncer   *syncer
	helpers  sync.WaitGroup // scanner, syncer and spare keeper
	spares   *spares
	spoolN   countCache

	mu         sync.Mutex
	started    bool
	draining   bool
	queue      []*job
	queued     map[string]*job
	inflight   map[string]*job
	backlog    bool // intents on disk may be missing from the window: scan
	scanning   bool // the scanner is walking the spool
	scanned    bool // the first full scan of the spool is done
	replayed   int  // intents that scan queued
	stopParent func() bool
	drainOnce  sync.Once
	yielding   bool // handed over: a key enqueued again is the successor's

	hold *hold // running builds the uploads wait for (hold.go)

	claimMu    sync.Mutex
	claimWaits map[string]bool // keys whose claim another daemon holds
}

// NewPool returns a pool that does nothing until Start.
func NewPool(o Options) *Pool {
	o = o.withDefaults()
	p := &Pool{o: o, log: o.Log, events: eventlog.New(o.EventsFile, o.Log),
		wake: make(chan struct{}, 1), closed: make(chan struct{}),
		scanWake: make(chan struct{}, 1), room: make(chan struct{}, 1),
		syncer: newSyncer(o.SpoolDir, o.Log), spares: newSpares(o.SpoolDir),
		queued: map[string]*job{}, inflight: map[string]*job{}, claimWaits: map[string]bool{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.breaker = NewBreaker(o.BreakerThreshold, o.BreakerCooldown, time.Now)
	p.breaker.pauseBase = o.PauseRetry
	p.breaker.onChange = func(from, to string) {
		p.log.Warn("remote circuit breaker", "from", from, "to", to, "remote", p.remoteName())
	}
	p.fetch = newFetcher(p)
	p.hold = newHold()
	p.hold.onEnd = p.holdEnded
	return p
}

func (p *Pool) remoteName() string {
	if p.o.Remote == nil {
		return "none"
	}
	return p.o.Remote.String()
}

// Start starts the workers, the group commit, and the scanner that replays
// the spool in the background: a spool of any size never delays the
// daemon's readiness. The cancellation of ctx stops them at once, as the end
// of a drain does. With no remote it touches nothing.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("upload pool already started")
	}
	p.started = true
	if p.o.Remote == nil {
		p.scanned = true
		return nil
	}
	p.stopParent = context.AfterFunc(ctx, p.cancel)
	if err := os.MkdirAll(p.claimDir(), 0o700); err != nil {
		p.log.Warn("upload claims unavailable: two daemons sharing the spool may both upload a key", "dir", p.claimDir(), "err", err)
	}
	if n := p.removeStaleArchives(); n > 0 {
		p.log.Info("removed temp archives left by a killed daemon", "count", n, "dir", p.o.TempDir)
	}
	p.backlog = true
	p.helpers.Add(3)
	go p.scanner()
	go func() { defer p.helpers.Done(); p.syncer.run(p.ctx) }()
	go func() { defer p.helpers.Done(); p.spares.keep(p.ctx, p.log.Warn, p.o.Worked) }()
	for range p.o.Workers {
		p.wg.Add(1)
		go p.worker()
	}
	p.wakeScanner()
	return nil
}

// Enqueue queues entries whose intents the client has already written, and
// schedules their group commit. It never blocks on the workers. A key
// already queued or in flight is not queued twice, nor is an entry whose
// intent is no longer in the spool; past the window, an entry stays in the
// spool for the scanner. queued counts the new jobs.
func (p *Pool) Enqueue(entries []Entry) (queued int, err error) {
	if err := validEntries(entries); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Remote == nil {
		p.spoolN.invalidate()
		return 0, ErrNoRemote
	}
	if p.draining || p.ctx.Err() != nil {
		return 0, ErrDraining
	}
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		keys = append(keys, e.Key)
		if p.add(e) {
			queued++
		}
	}
	p.syncer.add(keys)
	p.spoolN.invalidate()
	p.afterEnqueue()
	return queued, nil
}

// Notice tells the pool that key's intent appeared in the spool, maybe
// without an Enqueue (a client whose call failed or was killed before it);
// the pool reads it and queues it if it is not known already.
func (p *Pool) Notice(key string) {
	p.spoolN.invalidate()
	p.mu.Lock()
	live := p.started && p.o.Remote != nil && !p.draining
	p.mu.Unlock()
	if !live || p.known(key) || cachekey.Valid(key) != nil {
		return
	}
	in, err := spool.Read(p.o.SpoolDir, p.o.FailedDir, key, p.log)
	if err != nil {
		return
	}
	p.HoldFor(in.BuildPid) // before the job is queued: no worker may take it first
	p.mu.Lock()
	ok := p.add(Entry{Key: in.Key, Path: in.Path})
	p.afterEnqueue()
	p.mu.Unlock()
	if ok {
		p.syncer.add([]string{key})
	}
}

// Rescan has the scanner walk the whole spool again, for a watcher that may
// have missed intents.
func (p *Pool) Rescan() {
	p.mu.Lock()
	p.backlog = true
	p.mu.Unlock()
	p.spoolN.invalidate()
	p.wakeScanner()
}

// validEntries checks what an RPC client sent; WriteIntent checked the same
// on the client side, where a bad entry is caught first.
func validEntries(entries []Entry) error {
	for i, e := range entries {
		if err := ValidKey(e.Key); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrInvalidEntry, i, err)
		}
		if !filepath.IsAbs(e.Path) {
			return fmt.Errorf("%w: entry %d (%s): path %q is not absolute", ErrInvalidEntry, i, e.Key, e.Path)
		}
	}
	return nil
}

// add queues e unless its intent file is gone, or its key is queued (then
// the newest path wins) or in flight (then it is remembered: see job.again),
// or the window is full (then the scanner finds it later). A missing intent
// was settled already: typically the daemon was started by this very upload
// and its scanner got there before the client's Enqueue. Intents are removed
// under p.mu too, so the check is exact. Called with p.mu held.
func (p *Pool) add(e Entry) bool {
	if p.yielding {
		return false // handed over: a scan still walking the spool leaves the rest to the successor
	}
	if _, err := os.Lstat(spool.File(p.o.SpoolDir, e.Key)); err != nil {
		return false
	}
	if j, ok := p.inflight[e.Key]; ok {
		j.again = &e
		return false
	}
	if j, ok := p.queued[e.Key]; ok {
		j.Path = e.Path
		return false
	}
	if len(p.queue) >= queueWindow {
		p.backlog = true
		p.wakeScanner()
		return false
	}
	p.push(&job{Entry: e})
	return true
}

// push appends j to the queue. Called with p.mu held.
func (p *Pool) push(j *job) {
	p.queue = append(p.queue, j)
	p.queued[j.Key] = j
}

// afterEnqueue marks activity and wakes a worker. Called with p.mu held.
func (p *Pool) afterEnqueue() {
	p.touch()
	p.spares.taken()
	if len(p.queue) > 0 {
		p.signal()
	}
}

func (p *Pool) signal() { poke(p.wake) }

func (p *Pool) wakeScanner() { poke(p.scanWake) }

// poke fills a one-slot wake-up channel unless it is full already.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Abort cancels every upload and download at once, for a forced exit: a
// Drain in progress then returns within its grace. Intents stay in the
// spool for the next daemon.
func (p *Pool) Abort() { p.cancel() }

// Drain closes the queue, lets queued and in-flight uploads run until the
// queue is empty or timeout passes, then cancels the rest: their intents stay
// in the spool, untouched, for the next daemon. Downloads are cancelled at
// once. It waits a bounded time for workers to return.
func (p *Pool) Drain(timeout time.Duration) DrainReport {
	base := p.beginDrain()
	done := waitGroupDone(&p.wg)
	finished, down := p.drainWait(done, timeout)
	switch {
	case down:
		q, f := p.Progress()
		p.log.Warn("the remote is unreachable (circuit breaker open) and no upload is talking to it: the drain ends now, the intents stay in the spool",
			"queued", q, "in_flight", f)
	case !finished:
		q, f := p.Progress()
		p.log.Warn("drain timeout passed, cancelling uploads", "timeout", timeout, "queued", q, "in_flight", f)
	}
	p.cancel()
	if !within(done, drainGrace) {
		p.log.Error("upload workers did not return after cancel", "grace", drainGrace)
	}
	p.fetch.wait(drainGrace)
	if !within(waitGroupDone(&p.helpers), drainGrace) {
		p.log.Error("spool scanner or group commit did not return after cancel", "grace", drainGrace)
	}
	p.syncer.flush()
	p.mu.Lock()
	if p.stopParent != nil {
		p.stopParent()
	}
	p.mu.Unlock()
	p.events.Close()
	return DrainReport{
		Drained:    int(p.c.completed.Load() + p.c.skipped.Load() - base.done),
		Failed:     int(p.c.failed.Load() - base.failed),
		Left:       spool.Count(p.o.SpoolDir),
		RemoteDown: down,
	}
}

// drainPoll is how often a drain looks at whether any upload still talks
// to the remote; only while draining.
const drainPoll = 50 * time.Millisecond

// drainWait waits up to timeout for done, and returns early (down) when
// the remote was already known to be unreachable as the drain began (the
// breaker open) and stays so with no upload attempt in progress: every
// worker then only waits for a remote that does not answer, and the
// drain's cap would be spent for nothing. A breaker that a burst of
// transient errors opens during the drain does not end it: its probe may
// well succeed, and the drain has its cap for that.
func (p *Pool) drainWait(done <-chan struct{}, timeout time.Duration) (finished, down bool) {
	openAtStart := p.breaker.State() == BreakerOpen
	_ = poll.Until(context.Background(), poll.Real, drainPoll, timeout, func() bool {
		finished = isClosed(done)
		down = !finished && openAtStart && p.breaker.State() == BreakerOpen && p.calling.Load() == 0
		return finished || down
	})
	return finished, down
}

type drainBase struct{ done, failed int64 }

// beginDrain refuses new work and wakes idle workers so they can return.
func (p *Pool) beginDrain() drainBase {
	p.mu.Lock()
	p.draining = true
	base := drainBase{done: p.c.completed.Load() + p.c.skipped.Load(), failed: p.c.failed.Load()}
	p.mu.Unlock()
	p.drainOnce.Do(func() { close(p.closed) })
	p.hold.end()
	p.fetch.close()
	return base
}

func waitGroupDone(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// within waits up to d for done.
func within(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
