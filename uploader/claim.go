package uploader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// Claims make an intent uploaded by exactly one daemon while two share the
// spool (a hand-over: the old daemon drains what it has in flight while its
// successor serves). A worker holds an flock(2) on claims/<key>.lock for as
// long as it uploads the key. The kernel drops the flock when its holder
// dies, however it dies, so what a SIGKILLed daemon had in flight is free
// at once, and a daemon that finds a claim held waits for it (claimWait)
// and then takes the intent if it is still in the spool.

// errClaimed means another process holds the claim on the key.
var errClaimed = errors.New("upload claimed by another daemon")

// claimPoll is how often a daemon retries a claim another daemon holds. A
// blocking flock cannot be cancelled, so a pool that stops would leave the
// goroutine behind; polling is bounded by the pool's life.
const claimPoll = 20 * time.Millisecond

// claim is a held claim on one key.
type claim struct {
	f    *os.File
	path string
}

// claimDir is where the claim files live: beside the intents, in a
// directory the spool scan (which reads only *.json names) never lists.
func (p *Pool) claimDir() string { return filepath.Join(p.o.SpoolDir, "claims") }

// takeClaim takes the claim on key without waiting. The file is removed by
// its holder when done, so after the flock is granted it checks that the
// file it locked is still the one at the path: otherwise it locked a file
// already unlinked and tries again on the new one.
func takeClaim(dir, key string) (*claim, error) {
	path := filepath.Join(dir, key+".lock")
	for range 8 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open claim %s: %w", path, err)
		}
		if err := runlock.Flock(f, false); err != nil {
			f.Close()
			if errors.Is(err, runlock.ErrLocked) {
				return nil, errClaimed
			}
			return nil, fmt.Errorf("flock claim %s: %w", path, err)
		}
		if samePath(f, path) {
			return &claim{f: f, path: path}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("claim %s keeps being replaced", path)
}

// samePath reports whether f is the file now at path.
func samePath(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// release removes the claim file, then drops the flock with the descriptor.
func (c *claim) release() {
	if c == nil {
		return
	}
	_ = os.Remove(c.path)
	_ = c.f.Close()
}

// claimJob takes the claim on j's key before a worker uploads it. If the
// other daemon holds it, the job leaves this pool and a waiter brings the
// key back once the claim is free (and only if its intent is still there).
// A claim that cannot be taken for another reason (an unwritable claims
// directory) does not stop the upload: one daemon is the normal case.
func (p *Pool) claimJob(j *job) bool {
	c, err := takeClaim(p.claimDir(), j.Key)
	switch {
	case err == nil && !p.intentThere(j.Key):
		// The other daemon uploaded it between our queueing and our claim.
		c.release()
		p.mu.Lock()
		delete(p.inflight, j.Key)
		p.touch()
		p.mu.Unlock()
		return false
	case err == nil:
		j.claim = c
		return true
	case errors.Is(err, errClaimed):
		p.yieldJob(j)
		return false
	}
	p.log.Warn("upload without a claim", "key", j.Key, "err", err)
	return true
}

// intentThere reports whether key's intent is still in the spool.
func (p *Pool) intentThere(key string) bool {
	_, err := os.Lstat(spool.File(p.o.SpoolDir, key))
	return err == nil
}

// yieldJob drops j, which the other daemon uploads, and waits for its claim.
func (p *Pool) yieldJob(j *job) {
	p.mu.Lock()
	delete(p.inflight, j.Key)
	p.touch()
	p.mu.Unlock()
	p.c.yielded.Add(1)
	p.waitClaim(j.Key)
}

// waitClaim polls the claim on key until it is free, then offers the key
// again: the intent is still in the spool if the holder died or gave up.
// One waiter per key; it stops with the pool.
func (p *Pool) waitClaim(key string) {
	p.claimMu.Lock()
	select {
	case <-p.closed: // draining: the other daemon keeps it
		p.claimMu.Unlock()
		return
	default:
	}
	if p.claimWaits[key] {
		p.claimMu.Unlock()
		return
	}
	p.claimWaits[key] = true
	p.claimMu.Unlock()
	p.helpers.Add(1)
	go func() {
		defer p.helpers.Done()
		defer func() { p.claimMu.Lock(); delete(p.claimWaits, key); p.claimMu.Unlock() }()
		if p.claimFree(key) {
			p.Notice(key)
		}
	}()
}

// claimFree waits until nobody holds the claim on key; false if the pool
// stopped first.
func (p *Pool) claimFree(key string) bool {
	free := false
	_ = poll.Until(p.ctx, poll.Real, claimPoll, poll.Forever, func() bool {
		c, err := takeClaim(p.claimDir(), key)
		if err == nil {
			c.f.Close() // not removed: we take it again at once to upload
			free = true
			return true
		}
		return !errors.Is(err, errClaimed) || isClosed(p.closed)
	})
	return free
}

// isClosed reports whether ch is closed (the pool is draining).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// HandOver is the drain of a daemon whose successor serves: the queue is
// dropped (the successor takes those intents: it scanned the spool and
// watches it) and only the uploads in flight, which this daemon holds the
// claims of, get up to timeout. A key enqueued again meanwhile is left to
// the successor too.
func (p *Pool) HandOver(timeout time.Duration) DrainReport {
	p.mu.Lock()
	p.yielding = true
	p.draining = true
	for _, j := range p.queue {
		delete(p.queued, j.Key)
	}
	p.queue = nil
	p.mu.Unlock()
	return p.Drain(timeout)
}

// removeStaleArchives deletes the temp archives no daemon is uploading:
// during a hand-over the old daemon still archives what it has in flight,
// so an archive whose key is claimed is left alone (RemoveStaleArchives
// assumes one daemon owns the cache directory; a successor shares it).
func (p *Pool) removeStaleArchives() int {
	ents, _ := os.ReadDir(p.o.TempDir)
	n := 0
	for _, e := range ents {
		key, ok := archiveKey(e.Name())
		if !ok {
			continue
		}
		c, err := takeClaim(p.claimDir(), key)
		if err != nil {
			continue // claimed, or no claim to be had: leave it
		}
		if os.Remove(filepath.Join(p.o.TempDir, e.Name())) == nil {
			n++
		}
		c.release()
	}
	return n
}

// archiveKey is the key in a temp archive's name,
// kache-archive-<key>-<random><ArchiveSuffix>.
func archiveKey(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, archiveTempPrefix)
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, ArchiveSuffix)
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", false
	}
	return rest[:i], true
}
