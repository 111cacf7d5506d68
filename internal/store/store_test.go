package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func put(t *testing.T, s Store, key string, size int, used time.Time) {
	t.Helper()
	tmp, err := s.Begin(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "f"), make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(key, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(s.Path(key), used, used); err != nil {
		t.Fatal(err)
	}
}

func TestLookupServesOnlyTrustedEntries(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	put(t, s, "good", 10, time.Now().Add(-time.Hour))
	if _, err := s.Lookup("good"); err != nil {
		t.Fatalf("lookup of a whole entry: %v", err)
	}
	fi, _ := os.Stat(s.Path("good"))
	if time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("lookup did not mark the entry used: mtime %v", fi.ModTime())
	}
	if _, err := s.Lookup("absent"); !os.IsNotExist(err) {
		t.Errorf("absent key: %v, want not-exist", err)
	}
	os.Symlink(s.Path("good"), s.Path("link"))
	if _, err := s.Lookup("link"); err == nil {
		t.Error("a symlink entry was served")
	}
	put(t, s, "open", 1, time.Now())
	os.Chmod(s.Path("open"), 0o777)
	if _, err := s.Lookup("open"); err == nil {
		t.Error("a world-writable entry was served")
	}
	if _, err := s.Lookup("../x"); err == nil {
		t.Error("an invalid key was looked up")
	}
}

func TestCommitKeepsTheFirstWholeEntry(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	put(t, s, "k", 3, time.Now())
	tmp, _ := s.Begin("k")
	os.WriteFile(filepath.Join(tmp, "f"), []byte("second"), 0o600)
	if err := s.Commit("k", tmp); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(s.Path("k"), "f"))
	if len(b) != 3 {
		t.Errorf("entry replaced: %q", b)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the losing temp dir is left: %v", err)
	}
}

func TestEvictOldestFirstSparingRecentAndKept(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	now := time.Now()
	put(t, s, "oldest", 100, now.Add(-4*time.Hour))
	put(t, s, "pending", 100, now.Add(-3*time.Hour))
	put(t, s, "older", 100, now.Add(-2*time.Hour))
	put(t, s, "recent", 100, now.Add(-10*time.Second))
	keep := func(k string) bool { return k == "pending" }
	ev, err := s.Evict(150, keep, now)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"oldest": false, "pending": true, "older": false, "recent": true} {
		_, err := os.Stat(s.Path(k))
		if got := err == nil; got != want {
			t.Errorf("%s present=%v, want %v", k, got, want)
		}
	}
	if ev.Entries != 2 || ev.Bytes != 200 || ev.Left.Bytes != 200 || ev.Left.Entries != 2 {
		t.Errorf("evicted %+v", ev)
	}
}

func TestEvictRemovesStaleTemps(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	old, _ := s.Begin("a")
	fresh, _ := s.Begin("b")
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	if _, err := s.Evict(DefaultCap, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("stale temp dir kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a writer's fresh temp dir was removed")
	}
}

func TestPruneOldRemovesOnlyOldFiles(t *testing.T) {
	dir := t.TempDir()
	old, recent, sub := filepath.Join(dir, "old"), filepath.Join(dir, "recent"), filepath.Join(dir, "sub")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("memo"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-15 * 24 * time.Hour)
	for _, p := range []string{old, sub} {
		os.Chtimes(p, past, past)
	}
	if n := PruneOld(dir, 14*24*time.Hour, time.Now()); n != 1 {
		t.Errorf("PruneOld removed %d files, want 1", n)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("an old memo was kept")
	}
	for _, p := range []string{recent, sub} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if n := PruneOld(filepath.Join(dir, "missing"), time.Hour, time.Now()); n != 0 {
		t.Errorf("a missing directory: %d removed", n)
	}
}

// TestPathIsJoin: Path is filepath.Join, on its fast path and off it.
func TestPathIsJoin(t *testing.T) {
	dirs := []string{"/home/u/.cache/kache/store", "/s", "/", "", ".", "..", "rel/dir", "./rel", "/a//b", "/a/./b",
		"/a/../b", "/a/b/", "/a/b/.", "/a/b/..", "/a/.b/c", "/a/b..c", "/a/..b", ".hidden/x"}
	keys := []string{"go-00ff", "abc", "", ".", "..", "a/b", "../x", ".x", "x.."}
	for _, d := range dirs {
		for _, k := range keys {
			if got, want := (Store{Dir: d}).Path(k), filepath.Join(d, k); got != want {
				t.Errorf("Store{%q}.Path(%q) = %q, want %q", d, k, got, want)
			}
		}
	}
}
