package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// bothRemotes is a directory remote and an S3 remote on versitygw.
func bothRemotes(t *testing.T) map[string]Remote {
	t.Helper()
	d, err := NewDir(t.TempDir())
	must(t, err)
	srv := s3test.Start(t)
	srv.SetEnv(t)
	return map[string]Remote{"dir": d, "s3": newS3(t, srv)}
}

// rewritingRemote rewrites the source file, same size, new bytes, just
// before the first PutNew sends it: the build rewrote the file between
// kache hashing it and sending it.
type rewritingRemote struct {
	Remote
	src  string
	done atomic.Bool
}

func (r *rewritingRemote) PutNew(ctx context.Context, key string, body io.Reader, size int64, sum string, meta map[string]string) error {
	if !r.done.Swap(true) {
		if err := os.WriteFile(r.src, randomBytes(int(size)), 0o644); err != nil {
			return err
		}
	}
	return r.Remote.PutNew(ctx, key, body, size, sum, meta)
}

// TestRewriteDuringUploadNeverPoisonsTheKey: the checksum stored is the hash
// of the bytes stored. A large file rewritten between hashing and sending
// fails the attempt as a changed source and stores nothing; the retry
// stores the new bytes, which download and verify. A small file is read
// once, so what was read is what is stored, consistently.
func TestRewriteDuringUploadNeverPoisonsTheKey(t *testing.T) {
	for name, r := range bothRemotes(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newPoolFixture(t)
			big := f.source(t, "big", smallFileMax+4096)
			rw := &rewritingRemote{Remote: r, src: big}
			_, _, err := PutEntry(ctx, rw, "rewritten-"+name, big, "")
			if !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("PutEntry of a file rewritten mid-upload = %v, want ErrSourceChanged", err)
			}
			t.Logf("refused: %v", err)
			if ok, err := HasEntry(ctx, r, "rewritten-"+name); ok || err != nil {
				t.Fatalf("HasEntry after a refused upload = %v, %v; want nothing stored", ok, err)
			}
			if _, existed, err := PutEntry(ctx, rw, "rewritten-"+name, big, ""); err != nil || existed {
				t.Fatalf("retry = %v, %v", existed, err)
			}
			dest := filepath.Join(f.store, "rewritten")
			if _, found, err := GetEntry(ctx, r, "rewritten-"+name, dest); !found || err != nil {
				t.Fatalf("GetEntry after the retry = %v, %v", found, err)
			}
			sameFile(t, big, dest)

			small := f.source(t, "small", 32<<10)
			before, err := os.ReadFile(small)
			must(t, err)
			rw = &rewritingRemote{Remote: r, src: small}
			if _, _, err := PutEntry(ctx, rw, "small-"+name, small, ""); err != nil {
				t.Fatalf("PutEntry of a small file rewritten after it was read = %v", err)
			}
			got, err := io.ReadAll(mustGetEntry(t, r, "small-"+name, f.store))
			must(t, err)
			if !bytes.Equal(got, before) {
				t.Fatal("the small entry is not the bytes that were read and hashed")
			}
		})
	}
}

func mustGetEntry(t *testing.T, r Remote, key, store string) io.Reader {
	t.Helper()
	dest := filepath.Join(store, key)
	if _, found, err := GetEntry(context.Background(), r, key, dest); !found || err != nil {
		t.Fatalf("GetEntry %s = %v, %v", key, found, err)
	}
	f, err := os.Open(dest)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCorruptEntryIsDeletedAndUploadedAgain: a download that fails
// verification removes the entry, so the next upload stores it again
// instead of being skipped for ever.
func TestCorruptEntryIsDeletedAndUploadedAgain(t *testing.T) {
	d, err := NewDir(t.TempDir())
	must(t, err)
	f := newPoolFixture(t)
	src := f.source(t, "f", 1000)
	ctx := context.Background()
	_, _, err = PutEntry(ctx, d, "k", src, "")
	must(t, err)
	obj := filepath.Join(d.Root(), V2Dir, "k")
	data, err := os.ReadFile(obj)
	must(t, err)
	data[len(data)-1] ^= 0xff
	must(t, os.WriteFile(obj, data, 0o644))
	if _, _, err := GetEntry(ctx, d, "k", filepath.Join(f.store, "k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetEntry of a corrupt entry = %v, want ErrCorrupt", err)
	}
	if ok, _ := HasEntry(ctx, d, "k"); ok {
		t.Fatal("the corrupt entry is still on the remote")
	}
	if _, existed, err := PutEntry(ctx, d, "k", src, ""); existed || err != nil {
		t.Fatalf("upload after the corrupt download = %v, %v; want it stored again", existed, err)
	}
	if _, err := io.ReadAll(mustGetEntry(t, d, "k", f.store)); err != nil {
		t.Fatal(err)
	}
	sameFile(t, src, filepath.Join(f.store, "k"))
}

// TestConditionalPutSkipsPresent: the second upload of a key is one
// request answered "already there", on both remotes.
func TestConditionalPutSkipsPresent(t *testing.T) {
	for name, r := range bothRemotes(t) {
		t.Run(name, func(t *testing.T) {
			f := newPoolFixture(t)
			src := f.source(t, "f", 100)
			ctx := context.Background()
			if _, existed, err := PutEntry(ctx, r, "twice", src, ""); existed || err != nil {
				t.Fatalf("first PutEntry = %v, %v", existed, err)
			}
			must(t, os.WriteFile(src, []byte("other bytes"), 0o644))
			if _, existed, err := PutEntry(ctx, r, "twice", src, ""); !existed || err != nil {
				t.Fatalf("second PutEntry = %v, %v; want existed", existed, err)
			}
		})
	}
}

// TestV1EntriesStillRead: a v1 file entry (data, then manifest) downloads;
// a v2 object of the same key is preferred.
func TestV1EntriesStillRead(t *testing.T) {
	d, err := NewDir(t.TempDir())
	must(t, err)
	ctx := context.Background()
	body := []byte("v1 bytes")
	m := &Manifest{Version: 1, Key: "old", Kind: KindFile, Size: int64(len(body)), SHA256: sha256hex(body), Mode: 0o755, CreatedAt: nowRFC3339()}
	must(t, d.Put(ctx, "old", bytes.NewReader(body), int64(len(body))))
	must(t, d.Put(ctx, "old"+ManifestSuffix, strings.NewReader(mustJSON(t, m)), -1))
	if ok, err := HasEntry(ctx, d, "old"); !ok || err != nil {
		t.Fatalf("HasEntry of a v1 entry = %v, %v", ok, err)
	}
	store := t.TempDir()
	got, err := io.ReadAll(mustGetEntry(t, d, "old", store))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("v1 entry read back as %q, %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(store, "old")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("v1 mode not applied: %v", fi.Mode())
	}
	src := filepath.Join(t.TempDir(), "new")
	must(t, os.WriteFile(src, []byte("v2 bytes"), 0o644))
	_, _, err = PutEntry(ctx, d, "old", src, "")
	must(t, err)
	got, _ = io.ReadAll(mustGetEntry(t, d, "old", t.TempDir()))
	if string(got) != "v2 bytes" {
		t.Fatalf("with both layouts present GetEntry read %q, want the v2 object", got)
	}
}

// TestPoolLocalTempFailureSparesTheRemote: when the temp dir cannot be
// created, the directory entry is retried a few times and failed with the
// reason; the breaker stays closed and file entries keep uploading.
func TestPoolLocalTempFailureSparesTheRemote(t *testing.T) {
	f := newPoolFixture(t)
	blocker := filepath.Join(f.dir, "not-a-dir")
	must(t, os.WriteFile(blocker, nil, 0o644))
	o := f.options(t, f.remote)
	o.TempDir = filepath.Join(blocker, "tmp")
	o.BreakerThreshold = 2
	p, _ := startPool(t, o)
	dir := Entry{Key: "tree", Path: f.sourceDir(t, "tree")}
	must(t, spool.WriteIntent(f.spool, dir, 0))
	files := spoolEntries(t, f, "file", 10)
	if _, err := p.Enqueue(append([]Entry{dir}, files...)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "jobs settled", idle(p, f.spool))
	s := p.Stats()
	if s.UploadsCompleted != 10 || s.UploadsFailed != 1 || s.Breaker != BreakerClosed {
		t.Fatalf("stats = %+v; want 10 files uploaded, the dir failed, the breaker closed", s)
	}
	rec := readFailed(t, f.spool+"/failed", "tree")
	if !strings.Contains(rec.Error, "temp archive") || !strings.Contains(rec.Error, blocker) {
		t.Fatalf("failed record of tree says %q; want the temp archive and its dir", rec.Error)
	}
	if n := len(eventsOf(t, f.events, eventlog.UploadRetry, "tree")); n != maxLocal-1 {
		t.Fatalf("%d retries of the local failure, want %d", n, maxLocal-1)
	}
}

// TestPoolTempArchivesCleaned: archives left by a killed daemon are removed
// at start, other files are not, and a failed upload leaves none behind.
func TestPoolTempArchivesCleaned(t *testing.T) {
	f := newPoolFixture(t)
	tmp := filepath.Join(f.dir, "cache", "tmp")
	must(t, os.MkdirAll(tmp, 0o700))
	stale := filepath.Join(tmp, archiveTempPrefix+"k-123"+ArchiveSuffix)
	other := filepath.Join(tmp, "keep-me")
	must(t, os.WriteFile(stale, []byte("half an archive"), 0o600))
	must(t, os.WriteFile(other, nil, 0o600))
	var calls atomic.Int64
	r := &hookRemote{Remote: f.remote, put: func(context.Context, string) error {
		if calls.Add(1) == 1 {
			return errors.New("connection reset (test)")
		}
		return nil
	}}
	p, _ := startPool(t, f.options(t, r)) // TempDir defaults to <cache>/tmp
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale archive still there after Start: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("Start removed a file that is not a temp archive: %v", err)
	}
	e := Entry{Key: "tree", Path: f.sourceDir(t, "tree")}
	must(t, spool.WriteIntent(f.spool, e, 0))
	if _, err := p.Enqueue([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "upload done", idle(p, f.spool))
	if calls.Load() != 2 {
		t.Fatalf("%d put attempts, want a failure and a success", calls.Load())
	}
	left, _ := filepath.Glob(filepath.Join(tmp, archiveTempPrefix+"*"))
	if len(left) != 0 {
		t.Fatalf("temp archives left behind: %v", left)
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

// TestPoolCorruptEntryIsUploadedAgain: through the pool, as the daemon runs
// it: an entry whose object went bad misses on check (and is deleted), and
// the next upload of the key stores it again instead of being skipped, so
// the following check hits.
func TestPoolCorruptEntryIsUploadedAgain(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	e := f.entry(t, "poisoned", 5000)
	if _, err := p.Enqueue([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "first upload", idle(p, f.spool))
	obj := filepath.Join(f.remote.Root(), V2Dir, "poisoned")
	data, err := os.ReadFile(obj)
	must(t, err)
	data[len(data)-1] ^= 0xff
	must(t, os.WriteFile(obj, data, 0o644))
	ctx := context.Background()
	if found, err := p.Fetch(ctx, "poisoned"); found || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Fetch of a corrupt entry = %v, %v; want a miss with ErrCorrupt", found, err)
	}
	must(t, spool.WriteIntent(f.spool, e, 0))
	if _, err := p.Enqueue([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "second upload", idle(p, f.spool))
	if s := p.Stats(); s.UploadsCompleted != 2 || s.UploadsSkipped != 0 {
		t.Fatalf("stats = %+v; want the key uploaded twice, never skipped", s)
	}
	if found, err := p.Fetch(ctx, "poisoned"); !found || err != nil {
		t.Fatalf("Fetch after the re-upload = %v, %v", found, err)
	}
	sameFile(t, e.Path, filepath.Join(f.store, "poisoned"))
}

// A remote that says 0777 does not make store files writable by others.
func TestStoreModeNeverGroupOrOtherWritable(t *testing.T) {
	for in, want := range map[fs.FileMode]fs.FileMode{0o777: 0o755, 0o666: 0o644, 0o700: 0o700, 0o644: 0o644, 0o4777: 0o755} {
		if got := storeMode(in); got != want {
			t.Errorf("storeMode(%#o) = %#o, want %#o", in, got, want)
		}
	}
	if got := fileMode(0o777); got != 0o755 {
		t.Errorf("fileMode(0777) = %#o, want 0755", got)
	}
}
