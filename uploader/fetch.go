package uploader

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
)

// flight is one download into the store; callers asking for the same key
// wait on it instead of downloading again.
type flight struct {
	done  chan struct{}
	found bool
	err   error
}

// fetcher downloads entries into the local store: on demand for Fetch, and
// in the background, a few at a time, for Prefetch. Downloads run on the
// fetcher's own context, not the caller's: a remote check that gives up at
// its deadline leaves the download to finish, so the next build finds the
// entry in the store. Drain cancels them all.
type fetcher struct {
	p      *Pool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	limit  int

	mu      sync.Mutex
	closed  bool
	running map[string]*flight
	absent  *absentCache // confirmed misses, answered without the remote
	pending []string
	waiting map[string]struct{} // keys in pending
	active  int                 // prefetch runners
}

func newFetcher(p *Pool) *fetcher {
	f := &fetcher{p: p, limit: max(1, p.o.Workers/2),
		running: map[string]*flight{}, waiting: map[string]struct{}{}, absent: newAbsentCache()}
	f.ctx, f.cancel = context.WithCancel(p.ctx)
	return f
}

// Fetch answers a remote check: true if the entry is in the local store, or
// was on the remote and is now downloaded and verified into it. ctx bounds
// the wait, not the download.
func (p *Pool) Fetch(ctx context.Context, key string) (found bool, err error) {
	if p.o.Remote == nil {
		return false, ErrNoRemote
	}
	if err := ValidKey(key); err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	if p.inStore(key) {
		p.c.hits.Add(1)
		return true, nil
	}
	if p.fetch.absent.absent(key) {
		p.c.misses.Add(1)
		return false, nil
	}
	fl, err := p.fetch.join(key)
	if err != nil {
		return false, err
	}
	select {
	case <-fl.done:
	case <-ctx.Done():
		return false, fmt.Errorf("remote check %s: %w", key, ctx.Err())
	}
	if fl.err != nil {
		return false, fl.err
	}
	if fl.found {
		p.c.hits.Add(1)
	} else {
		p.c.misses.Add(1)
	}
	return fl.found, nil
}

// Prefetch schedules background downloads of the keys not yet in the store
// nor being fetched, and returns how many it scheduled. Bad keys are skipped.
func (p *Pool) Prefetch(keys []string) int {
	if p.o.Remote == nil {
		return 0
	}
	var want []string
	for _, k := range keys {
		if ValidKey(k) == nil && !p.inStore(k) {
			want = append(want, k)
		}
	}
	return p.fetch.schedule(want)
}

// inStore reports whether the store holds key as kache would have left it:
// ours, not a symlink, not writable by others. Anything else (planted by
// another user before the store's directory was checked, or tampered
// with) is not served as a hit; a download then replaces it.
func (p *Pool) inStore(key string) bool {
	if p.o.StoreDir == "" {
		return false
	}
	fi, err := os.Lstat(filepath.Join(p.o.StoreDir, key))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	trusted := fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 == 0 && (!ok || int(st.Uid) == os.Getuid())
	if !trusted {
		p.log.Warn("store entry not trusted: not served, fetched again", "key", key, "mode", fi.Mode())
	}
	return trusted
}

// join returns the running download of key, starting one if there is none.
func (f *fetcher) join(key string) (*flight, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrDraining
	}
	if fl, ok := f.running[key]; ok {
		return fl, nil
	}
	fl := f.startLocked(key)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.download(key, fl)
	}()
	return fl, nil
}

func (f *fetcher) startLocked(key string) *flight {
	fl := &flight{done: make(chan struct{})}
	f.running[key] = fl
	return fl
}

// schedule queues keys for the prefetch runners, skipping duplicates, and
// starts runners up to the limit.
func (f *fetcher) schedule(keys []string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0
	}
	n := 0
	for _, k := range keys {
		_, run := f.running[k]
		_, wait := f.waiting[k]
		if !run && !wait {
			f.pending = append(f.pending, k)
			f.waiting[k] = struct{}{}
			n++
		}
	}
	for f.active < f.limit && f.active < len(f.pending) {
		f.active++
		f.wg.Add(1)
		go f.runner()
	}
	return n
}

// runner downloads pending keys one at a time until none are left.
func (f *fetcher) runner() {
	defer f.wg.Done()
	for {
		key, fl := f.nextPending()
		if key == "" {
			return
		}
		if fl != nil {
			f.download(key, fl)
		}
	}
}

// nextPending takes a pending key and starts its flight, or returns a nil
// flight if the key is already downloading; "" means stop.
func (f *fetcher) nextPending() (string, *flight) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 || f.closed {
		f.active--
		return "", nil
	}
	key := f.pending[0]
	f.pending = f.pending[1:]
	delete(f.waiting, key)
	if _, ok := f.running[key]; ok {
		return key, nil
	}
	return key, f.startLocked(key)
}

// download gets key into the store and settles its flight.
func (f *fetcher) download(key string, fl *flight) {
	p := f.p
	start := time.Now()
	n, found, err := f.get(key)
	switch {
	case n < 0: // already in the store: nothing was downloaded
	case err != nil:
		err = fmt.Errorf("download %s from %s: %w", key, p.remoteName(), err)
		p.log.Warn("download failed", "key", key, "err", err)
		p.events.Record(eventlog.Event{Kind: eventlog.DownloadFailed, Key: key, Error: err.Error(), Ms: since(start)})
	case found:
		p.c.downloads.Add(1)
		p.c.bytesDown.Add(n)
		p.events.Record(eventlog.Event{Kind: eventlog.DownloadDone, Key: key, Bytes: n, Ms: since(start)})
	}
	fl.found, fl.err = found, err
	if err == nil && !found {
		f.absent.note(key)
	}
	f.mu.Lock()
	delete(f.running, key)
	f.mu.Unlock()
	close(fl.done)
}

func (f *fetcher) get(key string) (int64, bool, error) {
	store := f.p.o.StoreDir
	if store == "" {
		return 0, false, fmt.Errorf("no local store directory configured")
	}
	if f.p.inStore(key) { // landed since the caller looked
		return -1, true, nil
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return 0, false, err
	}
	ctx, cancel := context.WithTimeout(f.ctx, transferTimeout)
	defer cancel()
	return GetEntry(ctx, f.p.o.Remote, key, filepath.Join(store, key))
}

// close refuses new downloads and cancels the running ones.
func (f *fetcher) close() {
	f.mu.Lock()
	f.closed = true
	f.pending, f.waiting = nil, map[string]struct{}{}
	f.mu.Unlock()
	f.cancel()
}

// wait waits up to d for downloads to return.
func (f *fetcher) wait(d time.Duration) {
	if !within(waitGroupDone(&f.wg), d) {
		f.p.log.Error("downloads did not return after cancel", "grace", d)
	}
}
