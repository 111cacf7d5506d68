package wrapper

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestPlaceHashedLinksAndVerifies: on one file system an output is linked,
// not copied, with its digest; a wrong digest leaves nothing behind.
func TestPlaceHashedLinksAndVerifies(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "libx.rlib")
	if err := os.WriteFile(src, []byte(strings.Repeat("rlib", 1<<18)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, want, err := digestFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "placed")
	n, d, err := placeHashed(src, dst, 0o600, "")
	if err != nil || n != 1<<20 || d != want {
		t.Fatalf("placeHashed = %d, %s, %v; want %d, %s", n, d, err, 1<<20, want)
	}
	if inode(t, src) != inode(t, dst) {
		t.Error("same file system: the output was copied, not linked")
	}
	bad := filepath.Join(dir, "bad")
	if _, _, err := placeHashed(src, bad, 0o600, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("wrong digest: err %v, want corrupt", err)
	}
	if _, err := os.Lstat(bad); !os.IsNotExist(err) {
		t.Errorf("wrong digest left %s behind (%v)", bad, err)
	}
}

// TestPlaceHashedCopiesAcrossFileSystems: where a link cannot be made (the
// store on another file system) the output is copied and hashed the same.
func TestPlaceHashedCopiesAcrossFileSystems(t *testing.T) {
	other := testenv.MountTmpfs(t, t.TempDir(), "8m")
	src := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(src, []byte("an executable"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, want, _ := digestFile(src)
	dst := filepath.Join(other, "app")
	if _, d, err := placeHashed(src, dst, 0o700, want); err != nil || d != want {
		t.Fatalf("placeHashed across file systems = %s, %v", d, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "an executable" {
		t.Errorf("copied content %q", b)
	}
}

// settled waits until path's times are old enough for a memo.
func settled(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stamp, err := fileStamp(path)
		if err != nil {
			t.Fatal(err)
		}
		if !racy(stamp, time.Now()) {
			return stamp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still racy after 10 s: %s", path, stamp)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemoNeverServesARewrittenFile: an extern's digest is remembered by
// the first reader and used while the file is untouched; never for a file
// just written (its stamp could survive a rewrite in the same clock
// tick), and never once it was rewritten in place, even with its size and
// mtime put back (the ctime moves on).
func TestMemoNeverServesARewrittenFile(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "deps", "libdep.rlib")
	if err := os.MkdirAll(filepath.Dir(lib), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("version one"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &call{o: Options{CacheDir: dir}, inv: &Invocation{Externs: []Extern{{"dep", lib}}}, n: newNormalizer(dir, dir)}
	d1, _ := fileDigest(lib)
	fresh, _ := fileStamp(lib)
	if racy(fresh, time.Now()) {
		c.remember(lib, fresh, d1)
		if _, ok := c.recall(lib, fresh); ok {
			t.Error("a memo was kept for a file written within the clock's granularity")
		}
	}
	stamp := settled(t, lib)
	if d, err := c.digestAt(lib, stamp); err != nil || d != d1 {
		t.Fatalf("digestAt = %s, %v; want %s", d, err, d1)
	}
	if got, ok := c.recall(lib, stamp); !ok || got != d1 {
		t.Fatalf("the first reader did not remember the digest: %s, %v", got, ok)
	}
	fi, _ := os.Stat(lib)
	if err := os.WriteFile(lib, []byte("version two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(lib, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	stamp2, _ := fileStamp(lib)
	if _, ok := c.recall(lib, stamp2); ok {
		t.Fatalf("the memo served a file rewritten in place (stamp %s, was %s)", stamp2, stamp)
	}
	d2, err := c.digestAt(lib, stamp2)
	want, _ := fileDigest(lib)
	if err != nil || d2 != want || d2 == d1 {
		t.Errorf("digestAt after a rewrite = %s, %v; want the new content's %s", d2, err, want)
	}
	if _, ok := c.recall(filepath.Join(dir, "deps", "other.rlib"), stamp); ok {
		t.Error("the memo answered for another path")
	}
}
