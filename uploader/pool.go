package uploader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
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
	// local counts attempts that failed on this machine (LocalError).
	local int
}

// Pool uploads the entries of the spool with a fixed set of workers. The
// queue is an unbounded slice behind a mutex, so Enqueue never blocks an RPC
// handler; a one-slot channel wakes an idle worker, and each worker that
// takes a job passes the wake-up on while work remains.
type Pool struct {
	o       Options
	log     *slog.Logger
	breaker *Breaker
	events  *EventLog
	c       counters
	fetch   *fetcher

	ctx    context.Context // cancelled at the end of a drain, or by Start's ctx
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
	closed chan struct{} // closed when the drain begins

	mu         sync.Mutex
	started    bool
	draining   bool
	queue      []*job
	queued     map[string]*job
	inflight   map[string]*job
	onDisk     map[string]struct{} // keys whose intent file is in the spool
	stopParent func() bool
	drainOnce  sync.Once
}

// NewPool returns a pool that does nothing until Start.
func NewPool(o Options) *Pool {
	o = o.withDefaults()
	p := &Pool{o: o, log: o.Log, events: NewEventLog(o.EventsFile, o.Log),
		wake: make(chan struct{}, 1), closed: make(chan struct{}),
		queued: map[string]*job{}, inflight: map[string]*job{}, onDisk: map[string]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.breaker = NewBreaker(o.BreakerThreshold, o.BreakerCooldown, time.Now)
	p.breaker.pauseBase = o.PauseRetry
	p.breaker.onChange = func(from, to string) {
		p.log.Warn("remote circuit breaker", "from", from, "to", to, "remote", p.remoteName())
	}
	p.fetch = newFetcher(p)
	return p
}

func (p *Pool) remoteName() string {
	if p.o.Remote == nil {
		return "none"
	}
	return p.o.Remote.String()
}

// Start replays every intent in the spool and starts the workers. The
// cancellation of ctx stops them at once, as the end of a drain does. With no
// remote it only counts the spool and touches nothing.
func (p *Pool) Start(ctx context.Context) (replayed int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return 0, errors.New("upload pool already started")
	}
	p.started = true
	if p.o.Remote == nil {
		for _, k := range intentKeys(p.o.SpoolDir) {
			p.onDisk[k] = struct{}{}
		}
		return 0, nil
	}
	intents, err := loadIntents(p.o.SpoolDir, p.o.FailedDir, p.log)
	if err != nil {
		return 0, err
	}
	p.stopParent = context.AfterFunc(ctx, p.cancel)
	if n := RemoveStaleArchives(p.o.TempDir); n > 0 {
		p.log.Info("removed temp archives left by a killed daemon", "count", n, "dir", p.o.TempDir)
	}
	for _, in := range intents {
		if p.add(Entry{Key: in.Key, Path: in.Path}) {
			replayed++
		}
	}
	for range p.o.Workers {
		p.wg.Add(1)
		go p.worker()
	}
	p.afterEnqueue()
	return replayed, nil
}

// Enqueue queues entries whose intents the client has already written. It
// never blocks on the workers. A key already queued or in flight is not
// queued twice, nor is an entry whose intent is no longer in the spool;
// queued counts the new jobs.
func (p *Pool) Enqueue(entries []Entry) (queued int, err error) {
	if err := validEntries(entries); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Remote == nil {
		for _, e := range entries {
			p.onDisk[e.Key] = struct{}{}
		}
		return 0, ErrNoRemote
	}
	if p.draining || p.ctx.Err() != nil {
		return 0, ErrDraining
	}
	for _, e := range entries {
		if p.add(e) {
			queued++
		}
	}
	p.afterEnqueue()
	return queued, nil
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
// the newest path wins) or in flight (then it is remembered: see job.again).
// A missing intent was settled already: typically the daemon was started by
// this very upload and its replay got there before the client's Enqueue.
// Intents are removed under p.mu too, so the check is exact. Called with
// p.mu held.
func (p *Pool) add(e Entry) bool {
	if _, err := os.Lstat(intentFile(p.o.SpoolDir, e.Key)); err != nil {
		return false
	}
	p.onDisk[e.Key] = struct{}{}
	if j, ok := p.inflight[e.Key]; ok {
		j.again = &e
		return false
	}
	if j, ok := p.queued[e.Key]; ok {
		j.Path = e.Path
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
	if len(p.queue) > 0 {
		p.signal()
	}
}

func (p *Pool) signal() {
	select {
	case p.wake <- struct{}{}:
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
	if !within(done, timeout) {
		q, f := p.Progress()
		p.log.Warn("drain timeout passed, cancelling uploads", "timeout", timeout, "queued", q, "in_flight", f)
	}
	p.cancel()
	if !within(done, drainGrace) {
		p.log.Error("upload workers did not return after cancel", "grace", drainGrace)
	}
	p.fetch.wait(drainGrace)
	p.mu.Lock()
	if p.stopParent != nil {
		p.stopParent()
	}
	p.mu.Unlock()
	p.events.Close()
	return DrainReport{
		Drained: int(p.c.completed.Load() + p.c.skipped.Load() - base.done),
		Failed:  int(p.c.failed.Load() - base.failed),
		Left:    countIntents(p.o.SpoolDir),
	}
}

type drainBase struct{ done, failed int64 }

// beginDrain refuses new work and wakes idle workers so they can return.
func (p *Pool) beginDrain() drainBase {
	p.mu.Lock()
	p.draining = true
	base := drainBase{done: p.c.completed.Load() + p.c.skipped.Load(), failed: p.c.failed.Load()}
	p.mu.Unlock()
	p.drainOnce.Do(func() { close(p.closed) })
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
