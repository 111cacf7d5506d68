package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// remoteEntries uploads n file entries straight to the remote and returns
// key -> source path.
func remoteEntries(t *testing.T, f *poolFixture, prefix string, n int) map[string]string {
	t.Helper()
	m := map[string]string{}
	for i := range n {
		key := fmt.Sprintf("%s-%d", prefix, i)
		m[key] = f.source(t, key, 3000+i)
		if _, _, err := PutEntry(context.Background(), f.remote, key, m[key], ""); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestFetchHitMissAndStoreHit(t *testing.T) {
	f := newPoolFixture(t)
	src := remoteEntries(t, f, "f", 1)["f-0"]
	dir := f.sourceDir(t, "d")
	if _, _, err := PutEntry(context.Background(), f.remote, "d", dir, ""); err != nil {
		t.Fatal(err)
	}
	p, _ := startPool(t, f.options(t, f.remote))
	ctx := context.Background()
	for _, key := range []string{"f-0", "d"} {
		if found, err := p.Fetch(ctx, key); !found || err != nil {
			t.Fatalf("Fetch(%s) = %v, %v; want a hit", key, found, err)
		}
	}
	sameFile(t, src, filepath.Join(f.store, "f-0"))
	sameTree(t, dir, filepath.Join(f.store, "d"))
	if found, err := p.Fetch(ctx, "f-0"); !found || err != nil { // from the store, no download
		t.Fatalf("second Fetch = %v, %v", found, err)
	}
	if found, err := p.Fetch(ctx, "absent"); found || err != nil {
		t.Fatalf("Fetch(absent) = %v, %v; want a miss", found, err)
	}
	if _, err := p.Fetch(ctx, "../etc"); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("Fetch(../etc) = %v, want ErrInvalidEntry", err)
	}
	s := p.Stats()
	if s.RemoteHits != 3 || s.RemoteMisses != 1 || s.Downloads != 2 || s.BytesDownloaded <= 3000 {
		t.Fatalf("stats = %+v", s)
	}
	if got := len(eventsOf(t, f.events, eventlog.DownloadDone, "")); got != 2 {
		t.Fatalf("%d download_done events, want 2", got)
	}
}

func TestFetchHonoursDeadlineAndDrainCancels(t *testing.T) {
	f := newPoolFixture(t)
	remoteEntries(t, f, "slow", 1)
	p := NewPool(f.options(t, &hookRemote{Remote: f.remote, get: blockUntilCancelled}))
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	found, err := p.Fetch(ctx, "slow-0")
	if found || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Fetch = %v, %v after %v; want a deadline error soon after 100ms", found, err, time.Since(start))
	}
	start = time.Now()
	p.Drain(10 * time.Second) // the download left running is cancelled, not waited for
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Drain took %v with a download hanging", el)
	}
	if len(eventsOf(t, f.events, eventlog.DownloadFailed, "slow-0")) != 1 {
		t.Fatal("no download_failed event for the cancelled download")
	}
	if _, err := os.Stat(filepath.Join(f.store, "slow-0")); !os.IsNotExist(err) {
		t.Fatalf("a cancelled download left %v in the store", err)
	}
}

func TestPrefetchDownloadsInBackgroundWithoutDuplicates(t *testing.T) {
	f := newPoolFixture(t)
	srcs := remoteEntries(t, f, "p", 6)
	release := make(chan struct{})
	gated := &hookRemote{Remote: f.remote, get: func(ctx context.Context, _ string) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	p, _ := startPool(t, f.options(t, gated))
	os.MkdirAll(f.store, 0o700)
	os.WriteFile(filepath.Join(f.store, "local"), []byte("x"), 0o644)
	keys := []string{"p-0", "p-1", "p-2", "p-3", "p-4", "p-5", "p-0", "absent", "local", "bad/key"}
	if n := p.Prefetch(keys); n != 7 {
		t.Fatalf("Prefetch scheduled %d, want 7 (6 present + absent; not the dup, the stored or the bad key)", n)
	}
	if n := p.Prefetch(keys); n != 0 {
		t.Fatalf("Prefetch of pending keys scheduled %d, want 0", n)
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, "prefetch done", func() bool {
		p.fetch.mu.Lock()
		defer p.fetch.mu.Unlock()
		return p.fetch.active == 0 && len(p.fetch.running) == 0
	})
	for key, src := range srcs {
		sameFile(t, src, filepath.Join(f.store, key))
	}
	if s := p.Stats(); s.Downloads != 6 || s.RemoteHits != 0 || s.RemoteMisses != 0 {
		t.Fatalf("stats = %+v; prefetch counts downloads, not remote checks", s)
	}
	if n := p.Prefetch(keys); n != 1 { // only "absent" is still not in the store
		t.Fatalf("Prefetch after completion scheduled %d, want 1", n)
	}
}

// A store entry kache would not have left (a symlink, writable by others,
// another user's) is not served as a hit.
func TestFetchDoesNotTrustTamperedStoreEntries(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	store := p.o.StoreDir
	must(t, os.MkdirAll(store, 0o700))
	must(t, os.Symlink("/etc/passwd", filepath.Join(store, "linked")))
	must(t, os.WriteFile(filepath.Join(store, "open"), []byte("x"), 0o666))
	must(t, os.Chmod(filepath.Join(store, "open"), 0o666))
	must(t, os.WriteFile(filepath.Join(store, "fine"), []byte("x"), 0o644))
	for key, want := range map[string]bool{"linked": false, "open": false, "fine": true} {
		if got := p.inStore(key); got != want {
			t.Errorf("inStore(%s) = %v, want %v", key, got, want)
		}
	}
}
