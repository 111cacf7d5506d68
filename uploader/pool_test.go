package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

func TestPoolUploadsFilesAndDirectories(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	var entries []Entry
	var total int64
	for i := range 20 {
		e := f.entry(t, fmt.Sprintf("file-%02d", i), 100+i*997)
		entries = append(entries, e)
		total += int64(100 + i*997)
	}
	dirEntry := Entry{Key: "dir-entry", Path: f.sourceDir(t, "dir-entry")}
	if err := spool.WriteIntent(f.spool, dirEntry, 0); err != nil {
		t.Fatal(err)
	}
	n, err := p.Enqueue(append(entries, dirEntry))
	if err != nil || n != 21 {
		t.Fatalf("Enqueue = %d, %v; want 21", n, err)
	}
	testenv.WaitFor(t, 20*time.Second, "all uploads done", idle(p, f.spool))

	for _, e := range entries {
		sameObject(t, e.Path, f.remote, e.Key)
	}
	got := filepath.Join(t.TempDir(), "dir-entry")
	if _, found, err := GetEntry(context.Background(), f.remote, "dir-entry", got); err != nil || !found {
		t.Fatalf("GetEntry(dir-entry) = %v, %v", found, err)
	}
	sameTree(t, dirEntry.Path, got)
	s := p.Stats()
	if s.UploadsCompleted != 21 || s.UploadsFailed != 0 || s.Spool != 0 || s.Queued+s.InFlight != 0 || s.BytesUploaded < total {
		t.Fatalf("stats = %+v", s)
	}
	if len(eventsOf(t, f.events, eventlog.UploadDone, "")) != 21 {
		t.Fatalf("want 21 upload_done events, got %v", readEvents(t, f.events))
	}
	if time.Since(p.LastActive()) > time.Minute {
		t.Fatalf("LastActive = %v", p.LastActive())
	}
}

func TestPoolReplaysSpoolAtStartAndSkipsPresent(t *testing.T) {
	f := newPoolFixture(t)
	for i := range 5 {
		f.entry(t, fmt.Sprintf("k%d", i), 500)
	}
	present := f.entry(t, "already", 700)
	if _, _, err := PutEntry(context.Background(), f.remote, present.Key, present.Path, ""); err != nil {
		t.Fatal(err)
	}
	p, replayed := startPool(t, f.options(t, f.remote))
	if replayed != 6 {
		t.Fatalf("replayed %d intents, want 6", replayed)
	}
	testenv.WaitFor(t, 10*time.Second, "replayed uploads done", idle(p, f.spool))
	if s := p.Stats(); s.UploadsCompleted != 5 || s.UploadsSkipped != 1 {
		t.Fatalf("stats = %+v; want 5 completed, 1 skipped", s)
	}
	if len(eventsOf(t, f.events, eventlog.UploadSkipped, "already")) != 1 {
		t.Fatal("no upload_skipped event for the present entry")
	}
}

func TestPoolDedupsQueuedAndInFlightKeys(t *testing.T) {
	f := newPoolFixture(t)
	release := make(chan struct{})
	var mu sync.Mutex
	puts := map[string]int{}
	gated := &hookRemote{Remote: f.remote, put: func(ctx context.Context, key string) error {
		mu.Lock()
		puts[key]++
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	o := f.options(t, gated)
	o.Workers = 1
	p, _ := startPool(t, o)
	a, b := f.entry(t, "a", 10), f.entry(t, "b", 10)
	if n, err := p.Enqueue([]Entry{a}); n != 1 || err != nil {
		t.Fatalf("Enqueue(a) = %d, %v", n, err)
	}
	testenv.WaitFor(t, 5*time.Second, "a in flight", func() bool { _, inFlight := p.Progress(); return inFlight == 1 })
	if n, err := p.Enqueue([]Entry{a, b, b}); n != 1 || err != nil {
		t.Fatalf("Enqueue(a, b, b) = %d, %v; want only b queued", n, err)
	}
	if n, _ := p.Enqueue([]Entry{b}); n != 0 {
		t.Fatalf("queued b again: %d", n)
	}
	if q, inFlight := p.Progress(); q != 1 || inFlight != 1 || !p.Busy() {
		t.Fatalf("Progress = %d queued, %d in flight; want 1, 1", q, inFlight)
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, "uploads done", idle(p, f.spool))
	mu.Lock()
	defer mu.Unlock()
	if puts["a"] != 1 || puts["b"] != 1 {
		t.Fatalf("data puts = %v; want one each for a and b", puts)
	}
	if s := p.Stats(); s.UploadsCompleted != 2 || s.UploadsSkipped != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPoolWithoutRemoteKeepsIntents(t *testing.T) {
	f := newPoolFixture(t)
	e := f.entry(t, "kept", 10)
	p, replayed := startPool(t, f.options(t, nil))
	if replayed != 0 {
		t.Fatalf("replayed %d with no remote", replayed)
	}
	if _, err := p.Enqueue([]Entry{e}); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("Enqueue = %v, want ErrNoRemote", err)
	}
	if _, err := p.Fetch(context.Background(), "kept"); !errors.Is(err, ErrNoRemote) {
		t.Fatalf("Fetch = %v, want ErrNoRemote", err)
	}
	if n := p.Prefetch([]string{"kept"}); n != 0 {
		t.Fatalf("Prefetch scheduled %d with no remote", n)
	}
	if s := p.Stats(); s.Spool != 1 || s.Breaker != BreakerClosed {
		t.Fatalf("stats = %+v; want the intent counted in the spool", s)
	}
	if r := p.Drain(time.Second); r.Left != 1 || r.Drained != 0 {
		t.Fatalf("Drain = %+v; want 1 left", r)
	}
	if _, err := os.Stat(spool.File(f.spool, "kept")); err != nil {
		t.Fatalf("intent gone: %v", err)
	}
}

func TestPoolRejectsBadEntriesAndWorkAfterDrain(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	for _, bad := range []Entry{{Key: "../x", Path: "/tmp"}, {Key: "ok", Path: "relative"}} {
		if _, err := p.Enqueue([]Entry{bad}); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("Enqueue(%+v) = %v, want ErrInvalidEntry", bad, err)
		}
	}
	p.Drain(time.Second)
	e := f.entry(t, "late", 10)
	if _, err := p.Enqueue([]Entry{e}); !errors.Is(err, ErrDraining) {
		t.Fatalf("Enqueue after Drain = %v, want ErrDraining", err)
	}
	if _, err := p.Fetch(context.Background(), "late"); !errors.Is(err, ErrDraining) {
		t.Fatalf("Fetch after Drain = %v, want ErrDraining", err)
	}
	if _, err := os.Stat(spool.File(f.spool, "late")); err != nil {
		t.Fatalf("intent of a refused upload gone: %v", err)
	}
}

func TestPoolPermanentFailuresMoveToFailed(t *testing.T) {
	f := newPoolFixture(t)
	var denied atomic.Int64
	r := &hookRemote{Remote: f.remote, put: func(_ context.Context, key string) error {
		if strings.HasPrefix(key, "denied") {
			denied.Add(1)
			return Permanent(errors.New("403 AccessDenied (test)"))
		}
		return nil
	}}
	p, _ := startPool(t, f.options(t, r))
	gone := f.entry(t, "vanished", 10)
	os.Remove(gone.Path)
	deny := f.entry(t, "denied", 10)
	fine := f.entry(t, "fine", 10)
	if _, err := p.Enqueue([]Entry{gone, deny, fine}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "jobs settled", idle(p, f.spool))

	for key, msg := range map[string]string{"vanished": "vanished", "denied": "AccessDenied"} {
		rec := readFailed(t, f.spool+"/failed", key)
		if !strings.Contains(rec.Error, msg) || rec.Key != key || rec.FailedAt.IsZero() || rec.CreatedAt.IsZero() {
			t.Errorf("failed record of %s = %+v", key, rec)
		}
		if len(eventsOf(t, f.events, eventlog.UploadRetry, key)) != 0 || len(eventsOf(t, f.events, eventlog.UploadFailed, key)) != 1 {
			t.Errorf("%s: want one upload_failed event and no retry: %v", key, eventsOf(t, f.events, "", key))
		}
	}
	if denied.Load() != 1 {
		t.Fatalf("a permanent failure was tried %d times", denied.Load())
	}
	if s := p.Stats(); s.UploadsFailed != 2 || s.FailedIntents != 2 || s.UploadsCompleted != 1 || s.Spool != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestPoolStartQuarantinesCorruptIntent(t *testing.T) {
	f := newPoolFixture(t)
	f.entry(t, "good", 10)
	os.WriteFile(filepath.Join(f.spool, "broken.json"), []byte("\x00\x01"), 0o600)
	p, replayed := startPool(t, f.options(t, f.remote))
	if replayed != 1 {
		t.Fatalf("replayed %d, want 1", replayed)
	}
	testenv.WaitFor(t, 10*time.Second, "upload done", idle(p, f.spool))
	if s := p.Stats(); s.FailedIntents != 1 || s.UploadsCompleted != 1 {
		t.Fatalf("stats = %+v", s)
	}
	readFailed(t, filepath.Join(f.spool, "failed"), "broken")
}

// TestPoolBreakerStopsHammering: while the remote is down the workers retry,
// the breaker opens, and calls are limited to the run that opened it plus one
// probe per cooldown; once it is back everything finishes.
func TestPoolBreakerStopsHammering(t *testing.T) {
	f := newPoolFixture(t)
	var down atomic.Bool
	var downCalls, probes atomic.Int64
	down.Store(true)
	r := &hookRemote{Remote: f.remote, put: func(context.Context, string) error {
		if down.Load() {
			downCalls.Add(1)
			return errors.New("connection refused (test)")
		}
		return nil
	}}
	o := f.options(t, r)
	o.Workers, o.BreakerThreshold, o.BreakerCooldown = 4, 3, 100*time.Millisecond
	o.RetryBase, o.RetryMax = time.Millisecond, 2*time.Millisecond
	p := NewPool(o)
	p.breaker.onChange = func(_, to string) {
		if to == BreakerHalfOpen {
			probes.Add(1)
		}
	}
	for i := range 10 {
		f.entry(t, fmt.Sprintf("k%d", i), 100)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Drain(0) })
	testenv.WaitFor(t, 10*time.Second, "breaker open", func() bool { return p.Stats().Breaker == BreakerOpen })
	testenv.WaitFor(t, 10*time.Second, "three probes", func() bool { return probes.Load() >= 3 })
	calls := downCalls.Load()
	if limit := int64(o.BreakerThreshold+o.Workers) + probes.Load(); calls > limit {
		t.Fatalf("%d calls to a dead remote, want at most %d (threshold + workers + probes)", calls, limit)
	}
	down.Store(false)
	testenv.WaitFor(t, 10*time.Second, "uploads done after recovery", idle(p, f.spool))
	s := p.Stats()
	if s.UploadsCompleted != 10 || s.UploadsFailed != 0 || s.FailedIntents != 0 || s.Breaker != BreakerClosed {
		t.Fatalf("stats = %+v", s)
	}
	if len(eventsOf(t, f.events, eventlog.UploadRetry, "")) == 0 {
		t.Fatal("no upload_retry events")
	}
}

// TestPoolDrainCapLeavesIntentsForNextDaemon: a remote too slow for the
// drain cap; the drain returns in bounded time, leaving every intent, and
// the next pool on the same spool completes them.
func TestPoolDrainCapLeavesIntentsForNextDaemon(t *testing.T) {
	f := newPoolFixture(t)
	o := f.options(t, &hookRemote{Remote: f.remote, put: blockUntilCancelled})
	o.Workers = 3
	p := NewPool(o)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	for i := range 8 {
		entries = append(entries, f.entry(t, fmt.Sprintf("slow-%d", i), 2000))
	}
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "3 uploads in flight", func() bool { _, n := p.Progress(); return n == 3 })
	start := time.Now()
	rep := p.Drain(500 * time.Millisecond)
	if el := time.Since(start); el < 500*time.Millisecond || el > 3*time.Second {
		t.Fatalf("Drain(500ms) took %v", el)
	}
	if rep != (DrainReport{Drained: 0, Left: 8, Failed: 0}) {
		t.Fatalf("Drain = %+v, want 8 left", rep)
	}
	for _, e := range entries {
		if _, err := os.Stat(spool.File(f.spool, e.Key)); err != nil {
			t.Fatalf("intent of %s gone after drain: %v", e.Key, err)
		}
	}

	next, replayed := startPool(t, f.options(t, f.remote))
	if replayed != 8 {
		t.Fatalf("next pool replayed %d, want 8", replayed)
	}
	testenv.WaitFor(t, 10*time.Second, "replayed uploads done", idle(next, f.spool))
	for _, e := range entries {
		sameObject(t, e.Path, f.remote, e.Key)
	}
	if n := spool.Count(f.spool + "/failed"); n != 0 {
		t.Fatalf("%d intents in failed/", n)
	}
}

// TestPoolDrainFinishesQueuedWork: work queued when the drain begins still
// runs within the cap, and the report counts it.
func TestPoolDrainFinishesQueuedWork(t *testing.T) {
	f := newPoolFixture(t)
	release := make(chan struct{})
	gated := &hookRemote{Remote: f.remote, put: func(ctx context.Context, _ string) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	p, _ := startPool(t, f.options(t, gated))
	var entries []Entry
	for i := range 30 {
		entries = append(entries, f.entry(t, fmt.Sprintf("q%02d", i), 100))
	}
	p.Enqueue(entries)
	done := make(chan DrainReport)
	go func() { done <- p.Drain(20 * time.Second) }()
	testenv.WaitFor(t, 5*time.Second, "drain begun", func() bool {
		_, err := p.Enqueue(entries[:1])
		return errors.Is(err, ErrDraining)
	})
	close(release)
	if rep := <-done; rep != (DrainReport{Drained: 30, Left: 0, Failed: 0}) {
		t.Fatalf("Drain = %+v, want 30 drained, none left", rep)
	}
}

// TestPoolRetriesNewerPathAfterPermanentFailure: the key was enqueued again
// with another path while its job was in flight; when the job fails for
// good, the newer path is tried instead of giving up.
func TestPoolRetriesNewerPathAfterPermanentFailure(t *testing.T) {
	f := newPoolFixture(t)
	release := make(chan struct{})
	var calls atomic.Int64
	r := &hookRemote{Remote: f.remote, put: func(ctx context.Context, key string) error {
		if key != "k" || calls.Add(1) > 1 {
			return nil
		}
		<-release
		return Permanent(errors.New("first path unreadable (test)"))
	}}
	p, _ := startPool(t, f.options(t, r))
	first := f.entry(t, "k", 10)
	p.Enqueue([]Entry{first})
	testenv.WaitFor(t, 5*time.Second, "k in flight", func() bool { _, n := p.Progress(); return n == 1 })
	second := Entry{Key: "k", Path: f.source(t, "k-newer", 20)}
	if err := spool.WriteIntent(f.spool, second, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Enqueue([]Entry{second}); n != 0 || err != nil {
		t.Fatalf("Enqueue(in flight) = %d, %v", n, err)
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, "uploads done", idle(p, f.spool))
	sameObject(t, second.Path, f.remote, "k")
	if s := p.Stats(); s.UploadsCompleted != 1 || s.UploadsFailed != 0 || s.FailedIntents != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	base, ceiling := 200*time.Millisecond, 30*time.Second
	for _, attempt := range []int{0, 1, 3, 7, 8, 40, 1000} {
		want := min(base<<min(attempt, 20), ceiling)
		var top time.Duration
		for range 500 {
			d := backoff(base, ceiling, attempt)
			if d <= 0 || d > want+time.Millisecond {
				t.Fatalf("backoff(attempt %d) = %v, want in (0, %v]", attempt, d, want)
			}
			top = max(top, d)
		}
		if top < want/2 {
			t.Fatalf("backoff(attempt %d) never above %v in 500 draws: jitter not spread up to %v", attempt, top, want)
		}
	}
}

// TestPoolEnqueueAfterReplayIsNotRunTwice: the upload that auto-starts the
// daemon is replayed from the spool before the client's Enqueue arrives;
// that Enqueue must not run (and count) the entry a second time.
func TestPoolEnqueueAfterReplayIsNotRunTwice(t *testing.T) {
	f := newPoolFixture(t)
	ok := f.entry(t, "ok", 10)
	gone := f.entry(t, "gone", 10)
	os.Remove(gone.Path)
	p, replayed := startPool(t, f.options(t, f.remote))
	if replayed != 2 {
		t.Fatalf("replayed %d, want 2", replayed)
	}
	testenv.WaitFor(t, 10*time.Second, "replay settled", idle(p, f.spool))
	if n, err := p.Enqueue([]Entry{ok, gone}); n != 0 || err != nil {
		t.Fatalf("Enqueue of settled entries = %d, %v; want 0 queued", n, err)
	}
	if s := p.Stats(); s.UploadsCompleted != 1 || s.UploadsSkipped != 0 || s.UploadsFailed != 1 || s.Spool != 0 || p.Busy() {
		t.Fatalf("stats = %+v; want each entry handled once", s)
	}
}
