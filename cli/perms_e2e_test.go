package cli_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestFilesArePrivate: after a daemon has uploaded files and a directory,
// moved a vanished source to failed/, served a check from the remote into
// the store, and stopped, every file kache made under the cache dir and
// beside the socket is 0600 (the socket too) and every directory 0700:
// a build cache holds a user's artifacts, and docs/files.md documents
// nothing as shared. A umask of 0 would not change that: the test runs
// kache with the umask of the test process (0022 here), and anything
// wider than 0600/0700 is kache's own choice.
func TestFilesArePrivate(t *testing.T) {
	m := newMachine(t)
	m.set("KACHE_REMOTE_DIR=" + filepath.Join(t.TempDir(), "remote"))
	es := randomFiles(t, t.TempDir(), "perm", 5)
	es["perm-tree"] = makeTree(t, filepath.Join(t.TempDir(), "tree"), 3)
	m.ok("daemon", "start")
	m.ok("upload", "--from", batchFile(t, es))
	m.waitSpoolEmpty(30 * time.Second)
	// An intent whose source a build removed before the daemon got to it.
	putIntent(t, m.paths().SpoolDir(), spool.Intent{Key: "perm-gone", Path: filepath.Join(t.TempDir(), "gone.bin")})
	testenv.WaitFor(t, 20*time.Second, "the vanished source's intent in failed/", func() bool { return len(m.failed()) == 1 })
	os.RemoveAll(m.paths().StoreDir())
	m.ok("check", "perm-tree")
	m.ok("daemon", "stop")
	m.waitGone()
	for _, f := range []string{m.paths().EventsFile(), m.paths().LogFile(), m.paths().ExitFile(), m.failed()[0]} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the walk would miss a file kache writes: %v", err)
		}
	}
	for _, root := range []string{m.cache, filepath.Dir(m.sock)} {
		checkPrivate(t, root)
	}
}

// checkPrivate fails the test for every entry under root (root included)
// that is not a 0700 directory or a 0600 file or socket. The entries in
// store/ are the user's artifacts restored with the modes their manifest
// recorded (an executable stays executable, a tree keeps its 0755
// directories): they are private because store/ itself is 0700, which is
// checked, so they are not walked.
func checkPrivate(t *testing.T, root string) {
	t.Helper()
	store := filepath.Join(root, "store")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if filepath.Dir(p) == store {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if want, ok := privateMode(fi); ok && fi.Mode().Perm() != want {
			t.Errorf("%s is %v (%#o), want %#o", p, fi.Mode(), fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
}

// privateMode is the permission an entry of this type must have; false
// for a type kache does not create itself (a symlink).
func privateMode(fi fs.FileInfo) (fs.FileMode, bool) {
	switch {
	case fi.IsDir():
		return 0o700, true
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, false
	}
	return 0o600, true
}

// putIntent renames an intent into the spool as a client would (0600),
// without the client's check that its source exists.
func putIntent(t *testing.T, dir string, in spool.Intent) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".kache-tmp-test-"+in.Key)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, spool.File(dir, in.Key)); err != nil {
		t.Fatal(err)
	}
}
