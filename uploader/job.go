package uploader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// worker runs jobs until the queue is closed and empty, or the pool is
// cancelled.
func (p *Pool) worker() {
	defer p.wg.Done()
	yieldToBuilds()
	for {
		j := p.next()
		if j == nil {
			return
		}
		p.run(j)
	}
}

// next takes the oldest job, waiting for one; nil means stop.
func (p *Pool) next() *job {
	for {
		if p.ctx.Err() != nil {
			return nil
		}
		if held := p.heldBack(); held != nil {
			select {
			case <-held:
			case <-p.closed:
			case <-p.ctx.Done():
				return nil
			}
			continue
		}
		p.mu.Lock()
		j, draining := p.pop(), p.draining
		p.mu.Unlock()
		if j != nil {
			return j
		}
		if draining {
			return nil
		}
		select {
		case <-p.wake:
		case <-p.closed:
		case <-p.ctx.Done():
			return nil
		}
	}
}

// heldBack is what a worker waits on before taking a job while a build
// runs (hold.go); nil once draining: a drain never waits for a build.
func (p *Pool) heldBack() <-chan struct{} {
	p.mu.Lock()
	draining := p.draining
	p.mu.Unlock()
	if draining {
		return nil
	}
	return p.hold.waiting()
}

// pop moves the oldest job from the queue to in flight, passing the wake-up
// on if more remain. Called with p.mu held.
func (p *Pool) pop() *job {
	if len(p.queue) == 0 {
		return nil
	}
	j := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	delete(p.queued, j.Key)
	p.inflight[j.Key] = j
	j.since = time.Now()
	if len(p.queue) > 0 {
		p.signal()
	}
	if len(p.queue) < queueWindow/2 {
		poke(p.room)
	}
	return j
}

// run uploads one entry: transient failures retry with backoff for as long as
// the pool runs, behind the circuit breaker; a paused remote (credentials,
// clock, bucket) holds every upload until a probe gets through; local
// failures (the temp archive) and a changing source retry a few times
// without blaming the remote; a permanent failure moves the intent to
// failed/; cancellation leaves it in the spool.
func (p *Pool) run(j *job) {
	if !p.claimJob(j) {
		return // the other daemon uploads it
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		probe, err := p.admit()
		if err != nil {
			p.release(j)
			return
		}
		skipped, n, err := p.attempt(j)
		switch {
		case err == nil:
			p.breaker.Success(probe)
			p.succeed(j, skipped, n, start)
			return
		case p.ctx.Err() != nil:
			p.breaker.Release(probe)
			p.release(j)
			return
		case IsPaused(err):
			p.pause(j, probe, err)
			attempt--
			continue // admit waits for the pause's probe
		case isPermanent(err), errors.Is(err, ErrSourceChanged) && j.tooManyChanges(), IsLocal(err) && j.tooManyLocal():
			p.breaker.Release(probe)
			p.fail(j, err, start)
			return
		case errors.Is(err, ErrSourceChanged), IsLocal(err):
			p.breaker.Release(probe) // the source's or this machine's fault, not the remote's
		default:
			p.breaker.Failure(probe)
		}
		if !p.retryLater(j, attempt, err, start) {
			p.release(j)
			return
		}
	}
}

// pause reports a paused remote to the breaker and logs it once per job.
func (p *Pool) pause(j *job, probe bool, err error) {
	p.breaker.Pause(probe, err.Error())
	p.log.Warn("remote paused: uploads wait and retry on a schedule", "key", j.Key, "err", err)
}

// transferTimeout bounds one upload attempt or one download, so a remote
// that stalls mid-body (past the S3 client's response-header timeout) fails
// the attempt into a retry instead of holding a worker, the idle exit and
// every drain forever.
const transferTimeout = 10 * time.Minute

// attempt uploads the entry with one conditional write: an entry already
// on the remote is skipped, with no separate existence check.
func (p *Pool) attempt(j *job) (skipped bool, n int64, err error) {
	ctx, cancel := context.WithTimeout(p.ctx, transferTimeout)
	defer cancel()
	if _, err := os.Stat(j.Path); errors.Is(err, fs.ErrNotExist) {
		return false, 0, Permanent(fmt.Errorf("source %s vanished before upload", j.Path))
	}
	j.sent.Store(0)
	p.calling.Add(1)
	defer p.calling.Add(-1)
	n, skipped, err = PutEntry(withProgress(ctx, &j.sent), p.o.Remote, j.Key, j.Path, p.o.TempDir)
	if err != nil {
		return false, 0, fmt.Errorf("upload %s to %s: %w", j.Key, p.remoteName(), err)
	}
	return skipped, n, nil
}

// isPermanent: retrying cannot fix it. A permission error (an unreadable
// source, a read-only remote directory) needs a person, like a 403.
func isPermanent(err error) bool {
	return IsPermanent(err) || errors.Is(err, fs.ErrPermission)
}

// admit waits until the breaker lets a call through; an error means the
// pool was cancelled.
func (p *Pool) admit() (probe bool, err error) {
	for {
		changed := p.breaker.Changed()
		probe, ok, wait := p.breaker.Allow()
		if ok {
			return probe, nil
		}
		if wait <= 0 {
			wait = p.o.BreakerCooldown // a probe is in flight; Changed ends this early
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return false, p.ctx.Err()
		}
		t.Stop()
	}
}

// retryLater logs the failure and sleeps the backoff; false means the pool
// was cancelled meanwhile.
func (p *Pool) retryLater(j *job, attempt int, err error, start time.Time) bool {
	d := backoff(p.o.RetryBase, p.o.RetryMax, attempt)
	p.log.Warn("upload failed, will retry", "key", j.Key, "attempt", attempt+1, "retry_in", d, "err", err)
	p.events.Record(eventlog.Event{Kind: eventlog.UploadRetry, Key: j.Key, Error: err.Error(), Ms: since(start)})
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base*2^n)),
// so retrying workers spread out instead of stampeding a recovering remote.
func backoff(base, ceiling time.Duration, attempt int) time.Duration {
	d := base
	for i := 0; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	return rand.N(min(d, ceiling)) + time.Millisecond
}

// succeed removes the intent (the remote has the object), counts it, and
// only then releases the job, so that a pool that is no longer Busy has
// counted all its work.
//
// The event is recorded before the intent is removed: a SIGKILL between the
// two leaves the intent, whose next upload is a skip recorded again, where
// the other order lost the event for good.
func (p *Pool) succeed(j *job, skipped bool, n int64, start time.Time) {
	ev := eventlog.Event{Kind: eventlog.UploadDone, Key: j.Key, Bytes: n, Ms: since(start)}
	if skipped {
		ev.Kind = eventlog.UploadSkipped
	}
	p.events.Record(ev)
	p.fetch.absent.forget(j.Key)
	p.mu.Lock()
	p.removeIntent(j.Key)
	j.again = nil // its intent, written before its Enqueue, was just removed
	p.mu.Unlock()
	if skipped {
		p.c.skipped.Add(1)
	} else {
		p.c.completed.Add(1)
		p.c.bytesUp.Add(n)
	}
	p.c.latency.observe(time.Since(start))
	p.log.Debug("upload done", "key", j.Key, "bytes", n, "skipped", skipped, "ms", ev.Ms)
	p.release(j)
}

// removeIntent takes the intent file of key out of the spool (into the
// spares, or deleted). Called with p.mu held, so an
// Enqueue of the same key comes either before (its intent is removed with
// this one) or after (it sets job.again).
func (p *Pool) removeIntent(key string) {
	err := p.spares.done(spool.File(p.o.SpoolDir, key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("cannot remove upload intent", "key", key, "err", err)
		return
	}
	p.spoolN.invalidate()
}

// fail records the intent in failed/ with the error and takes it out of the
// spool, unless the key was enqueued again meanwhile with another path:
// that one is tried instead.
func (p *Pool) fail(j *job, cause error, start time.Time) {
	in, err := spool.ReadIntent(p.o.SpoolDir, j.Key)
	if err != nil {
		in = spool.Intent{Key: j.Key, Path: j.Path}
	}
	werr := spool.WriteFailed(p.o.FailedDir, in, cause)
	p.mu.Lock()
	// A fresh intent for the key arrived meanwhile (the build may have made
	// the file again): try it rather than delete it unconfirmed.
	retry := j.again != nil
	if retry {
		os.Remove(spool.File(p.o.FailedDir, j.Key))
	} else {
		j.again = nil
		if werr == nil {
			p.removeIntent(j.Key)
		}
	}
	p.mu.Unlock()
	switch {
	case retry:
		p.log.Info("upload failed, retrying with the newer path", "key", j.Key, "err", cause)
	case werr != nil:
		p.log.Error("upload failed permanently; cannot record it, intent left in the spool", "key", j.Key, "err", cause, "record_err", werr)
	default:
		p.log.Warn("upload failed permanently, intent moved to failed", "key", j.Key, "path", j.Path, "err", cause)
	}
	if !retry {
		p.c.failed.Add(1)
		p.events.Record(eventlog.Event{Kind: eventlog.UploadFailed, Key: j.Key, Error: cause.Error(), Ms: since(start)})
	}
	p.release(j)
}

// release takes the job out of flight, queueing the key again if a client
// enqueued it meanwhile.
func (p *Pool) release(j *job) {
	j.claim.release()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, j.Key)
	if e := j.again; e != nil && !p.yielding {
		p.push(&job{Entry: *e})
		p.signal()
	}
	p.touch()
}

func since(t time.Time) int64 { return time.Since(t).Milliseconds() }

// maxChanged bounds retries of a source that keeps changing while it is
// read: a file rewritten for ever is failed, not retried for ever.
const maxChanged = 5

// maxLocal bounds retries of a failure of this machine (a full or
// read-only temp dir): retried a few times, then failed with the reason.
const maxLocal = 5

func (j *job) tooManyLocal() bool {
	j.local++
	return j.local >= maxLocal
}

func (j *job) tooManyChanges() bool {
	j.changed++
	return j.changed >= maxChanged
}
