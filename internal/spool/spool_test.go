package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/cachekey"
)

func readFailed(t *testing.T, failedDir, key string) FailedRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(failedDir, key+intentExt))
	if err != nil {
		t.Fatalf("failed record of %s: %v", key, err)
	}
	var rec FailedRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("failed record of %s: %v\n%s", key, err, data)
	}
	return rec
}

func TestWriteIntentRecordsAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "cache", "upload-queue")
	if err := os.WriteFile(filepath.Join(dir, "out.rlib"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	before := time.Now().UTC()
	if err := WriteIntent(spool, Entry{Key: "crate-abc_1.0", Path: "out.rlib"}, 42); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(spool)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir: %v, mode %v, want 0700", err, fi.Mode().Perm())
	}
	intents, err := LoadIntents(spool)
	if err != nil || len(intents) != 1 {
		t.Fatalf("LoadIntents = %v, %v; want one intent", intents, err)
	}
	in := intents[0]
	if in.Key != "crate-abc_1.0" || in.Path != filepath.Join(dir, "out.rlib") || in.ClientEpoch != 42 || in.CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("intent = %+v", in)
	}
	ents, _ := os.ReadDir(spool)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "crate-abc_1.0.json" {
		t.Fatalf("spool holds %v, want only the intent (no temp files)", names)
	}
}

func TestWriteIntentRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key, path string
		want            error
		msg             string
	}{
		{"empty key", "", file, cachekey.ErrInvalid, "length"},
		{"slash", "a/b", file, cachekey.ErrInvalid, `"/"`},
		{"dot dot", "..", file, cachekey.ErrInvalid, "'.'"},
		{"missing path", "k", filepath.Join(dir, "nope"), fs.ErrNotExist, "nope"},
		{"empty path", "k", "", nil, "empty path"},
		{"fifo", "k", fifo, nil, "not a regular file or a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := WriteIntent(spool, Entry{Key: c.key, Path: c.path}, 0)
			if !errors.Is(err, ErrInvalidEntry) || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("WriteIntent = %v, want ErrInvalidEntry, %v, mentioning %q", err, c.want, c.msg)
			}
		})
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Fatalf("bad input touched the spool: %v", err)
	}
}

func TestWriteIntentAcceptsDirectoryAndOverwrites(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := WriteIntent(spool, Entry{Key: "k", Path: dir}, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteIntent(spool, Entry{Key: "k", Path: spool}, 2); err != nil {
		t.Fatal(err)
	}
	intents, err := LoadIntents(spool)
	if err != nil || len(intents) != 1 || intents[0].Path != spool || intents[0].ClientEpoch != 2 {
		t.Fatalf("LoadIntents = %+v, %v; want the second intent only", intents, err)
	}
}

func TestLoadIntentsQuarantinesCorruptOnes(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	if err := WriteIntent(spool, Entry{Key: "good", Path: dir}, 0); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"garbage.json":  "{not json",
		"renamed.json":  `{"key":"other","path":"/x"}`,
		"relative.json": `{"key":"relative","path":"x"}`,
	}
	for name, content := range bad {
		os.WriteFile(filepath.Join(spool, name), []byte(content), 0o600)
	}
	os.WriteFile(filepath.Join(spool, "README"), []byte("not an intent"), 0o600)
	young := filepath.Join(spool, ".intent-123.tmp")
	old := filepath.Join(spool, ".intent-456.tmp")
	os.WriteFile(young, nil, 0o600)
	os.WriteFile(old, nil, 0o600)
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	intents, err := LoadIntents(spool)
	if err != nil || len(intents) != 1 || intents[0].Key != "good" {
		t.Fatalf("LoadIntents = %+v, %v; want only the good intent", intents, err)
	}
	for name := range bad {
		if _, err := os.Stat(filepath.Join(spool, name)); !os.IsNotExist(err) {
			t.Errorf("%s still in the spool: %v", name, err)
		}
		rec := readFailed(t, filepath.Join(spool, "failed"), strings.TrimSuffix(name, ".json"))
		if rec.Error == "" || rec.FailedAt.IsZero() || rec.Raw != bad[name] {
			t.Errorf("failed record of %s = %+v", name, rec)
		}
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a young temp file (a client writing now) was removed: %v", err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a stale temp file was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(spool, "README")); err != nil {
		t.Errorf("a stranger's file was touched: %v", err)
	}
}

func TestLoadIntentsMissingSpoolIsEmpty(t *testing.T) {
	intents, err := LoadIntents(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(intents) != 0 {
		t.Fatalf("LoadIntents = %v, %v", intents, err)
	}
}

// A FIFO, a symlink or an oversized file in the spool is never read as an
// intent (a FIFO would block the reader for ever): it goes to failed/ with
// the reason, and the rest of the spool loads.
func TestLoadSkipsWhatIsNotAnIntentFile(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "upload-queue")
	src := filepath.Join(dir, "out.rlib")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteIntent(spool, Entry{Key: "good", Path: src}, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(spool, "fifo.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(spool, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, "big.json"), make([]byte, maxIntent+1), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan []Intent, 1)
	go func() { in, _ := LoadIntents(spool); done <- in }()
	select {
	case in := <-done:
		if len(in) != 1 || in[0].Key != "good" {
			t.Fatalf("loaded %+v; want only the good intent", in)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadIntents blocked on a FIFO")
	}
	for _, key := range []string{"fifo", "link", "big"} {
		rec, err := ReadFailed(filepath.Join(spool, "failed"), key)
		if err != nil || rec.Error == "" {
			t.Errorf("failed record of %s = %+v, %v; want one with the reason", key, rec, err)
		}
		if _, err := os.Lstat(File(spool, key)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still in the spool (%v)", key, err)
		}
	}
}

// An intent planted by another user is never replayed: it would have the
// daemon upload a file of ours that they name.
func TestLoadRefusesAnotherUsersIntent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a file of another user needs root to create (chown); run as root to cover it")
	}
	spool := filepath.Join(t.TempDir(), "upload-queue")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	planted := File(spool, "stolen")
	if err := os.WriteFile(planted, []byte(`{"key":"stolen","path":"/root/.ssh/id_rsa"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	in, err := LoadIntents(spool)
	if err != nil || len(in) != 0 {
		t.Fatalf("LoadIntents = %+v, %v; want nothing loaded", in, err)
	}
	rec, err := ReadFailed(filepath.Join(spool, "failed"), "stolen")
	if err != nil || !strings.Contains(rec.Error, "uid 65534") {
		t.Errorf("failed record = %+v, %v; want one naming the owner", rec, err)
	}
}

// Sync commits small and large batches (per intent, or the whole file
// system at once) and skips intents uploaded meanwhile.
func TestSyncBatches(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "q")
	var keys []string
	for i := range 100 {
		k := fmt.Sprintf("k%03d", i)
		if err := WriteIntent(spool, Entry{Key: k, Path: src}, 0); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := Sync(spool, append(keys[:3:3], "gone-already")); err != nil {
		t.Errorf("Sync(small batch) = %v", err)
	}
	if err := Sync(spool, keys); err != nil {
		t.Errorf("Sync(large batch) = %v", err)
	}
}

// A client killed before its rename leaves a temp file and no intent:
// nothing was handed over. The daemon's scan removes such a file once it is
// an hour old, and leaves a young one, which may be a writer at work.
func TestScanRemovesStaleTempFiles(t *testing.T) {
	spool := t.TempDir()
	old := filepath.Join(spool, atomicfile.TempPrefix+"old")
	young := filepath.Join(spool, atomicfile.TempPrefix+"young")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte(`{"key":"half`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if n := Count(spool); n != 0 {
		t.Errorf("Count = %d; temp files are not intents", n)
	}
	if _, err := os.Lstat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an hour-old temp file is still there (%v)", err)
	}
	if _, err := os.Lstat(young); err != nil {
		t.Errorf("a young temp file was removed: %v", err)
	}
}
