package uploader

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// poolFixture is a cache dir with a spool, a store, an events file and a
// directory remote, all in t.TempDir().
type poolFixture struct {
	dir, spool, store, events string
	remote                    *DirRemote
}

func newPoolFixture(t *testing.T) *poolFixture {
	t.Helper()
	dir := t.TempDir()
	r, err := NewDir(filepath.Join(dir, "remote"))
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	return &poolFixture{dir: dir, remote: r, spool: filepath.Join(cache, "upload-queue"),
		store: filepath.Join(cache, "store"), events: filepath.Join(cache, "events.jsonl")}
}

// options are fast settings for tests: short backoff and cooldown.
func (f *poolFixture) options(t *testing.T, r Remote) Options {
	return Options{Remote: r, SpoolDir: f.spool, StoreDir: f.store, EventsFile: f.events,
		Workers: 4, Log: testLogger(t), RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		BreakerThreshold: 5, BreakerCooldown: 100 * time.Millisecond}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startPool starts a pool and drains it when the test ends.
func startPool(t *testing.T, o Options) (*Pool, int) {
	t.Helper()
	p := NewPool(o)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Drain(0) })
	var n int
	testenv.WaitFor(t, 10*time.Second, "the first scan of the spool", func() bool {
		var done bool
		n, done = p.Replayed()
		return done
	})
	return p, n
}

// source writes n random bytes to a file under the fixture's src dir.
func (f *poolFixture) source(t *testing.T, name string, n int) string {
	t.Helper()
	path := filepath.Join(f.dir, "src", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, randomBytes(n), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sourceDir writes a small directory tree and returns its path.
func (f *poolFixture) sourceDir(t *testing.T, name string) string {
	t.Helper()
	root := filepath.Join(f.dir, "src", name)
	for _, rel := range []string{"lib.rlib", "deps/a.d", "deps/nested/b.o"} {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, randomBytes(1000+len(rel)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// entry writes a source file and its intent, as the client does before it
// calls the daemon.
func (f *poolFixture) entry(t *testing.T, key string, n int) Entry {
	t.Helper()
	e := Entry{Key: key, Path: f.source(t, key, n)}
	if err := spool.WriteIntent(f.spool, e, 0); err != nil {
		t.Fatal(err)
	}
	return e
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// waitFor polls cond until it holds or timeout passes.
// idle reports whether the pool has no work left and the spool is empty.
func idle(p *Pool, dir string) func() bool {
	return func() bool { return !p.Busy() && spool.Count(dir) == 0 }
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s (%d vs %d bytes)", got, want, len(b), len(a))
	}
}

// sameTree checks that got has exactly the files of want, byte for byte.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	count := 0
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		sameFile(t, p, filepath.Join(got, rel))
		count++
		return nil
	})
	n := 0
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if n != count {
		t.Fatalf("%s has %d files, %s has %d", got, n, want, count)
	}
}

// hookRemote wraps a Remote with per-call hooks; a hook's error is returned
// instead of calling the wrapped remote.
type hookRemote struct {
	Remote
	head, put, get func(ctx context.Context, key string) error
}

func (h *hookRemote) Head(ctx context.Context, key string) (bool, error) {
	if h.head != nil {
		if err := h.head(ctx, key); err != nil {
			return false, err
		}
	}
	return h.Remote.Head(ctx, key)
}

func (h *hookRemote) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if h.put != nil {
		if err := h.put(ctx, key); err != nil {
			return err
		}
	}
	return h.Remote.Put(ctx, key, r, size)
}

// PutNew calls the put hook with the entry's key (the v2 namespace cut off).
func (h *hookRemote) PutNew(ctx context.Context, key string, r io.Reader, size int64, sum string, meta map[string]string) error {
	if h.put != nil {
		if err := h.put(ctx, strings.TrimPrefix(key, V2Dir+"/")); err != nil {
			return err
		}
	}
	return h.Remote.PutNew(ctx, key, r, size, sum, meta)
}

// GetMeta calls the get hook with the entry's key (the v2 namespace cut off).
func (h *hookRemote) GetMeta(ctx context.Context, key string) (io.ReadCloser, map[string]string, error) {
	if h.get != nil {
		if err := h.get(ctx, strings.TrimPrefix(key, V2Dir+"/")); err != nil {
			return nil, nil, err
		}
	}
	return h.Remote.GetMeta(ctx, key)
}

func (h *hookRemote) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if h.get != nil {
		if err := h.get(ctx, key); err != nil {
			return nil, err
		}
	}
	return h.Remote.Get(ctx, key)
}

// blockUntilCancelled is a hook for a remote too slow for any deadline.
func blockUntilCancelled(ctx context.Context, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// readEvents is every event of the log at path (and its rotated file).
func readEvents(t *testing.T, path string) []eventlog.Event {
	t.Helper()
	var evs []eventlog.Event
	eventlog.Read(path, func(e eventlog.Event) { evs = append(evs, e) })
	return evs
}

func eventsOf(t *testing.T, path, kind, key string) []eventlog.Event {
	var out []eventlog.Event
	for _, e := range readEvents(t, path) {
		if (kind == "" || e.Kind == kind) && (key == "" || e.Key == key) {
			out = append(out, e)
		}
	}
	return out
}

// readFailed reads key's failed record, failing the test if it is missing.
func readFailed(t *testing.T, failedDir, key string) spool.FailedRecord {
	t.Helper()
	rec, err := spool.ReadFailed(failedDir, key)
	if err != nil {
		t.Fatalf("failed record of %s: %v", key, err)
	}
	return rec
}

// sameObject checks that the v2 object of key on r holds the bytes of the
// file src.
func sameObject(t *testing.T, src string, r Remote, key string) {
	t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := r.GetMeta(context.Background(), v2Key(key))
	if err != nil {
		t.Fatalf("object of %s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("object of %s: %d bytes (%v), want the %d of %s", key, len(got), err, len(want), src)
	}
}
