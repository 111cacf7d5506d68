package cli_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/totals"
)

// TestSpecialFilesNeverHang (issue 16, defects 6, 7 and 9): a FIFO, or a
// symlink to /dev/zero, planted where kache keeps stats.json,
// history.jsonl, events.jsonl, a spare intent or a failed record never
// hangs start, upload, monitor --once, upload --retry-failed or stop, and
// never makes the daemon read without bound.
func TestSpecialFilesNeverHang(t *testing.T) {
	for _, kind := range []string{"fifo", "devzero"} {
		for _, file := range []string{"stats", "history", "events", "spare", "failed"} {
			t.Run(kind+"/"+file, func(t *testing.T) {
				t.Parallel()
				m := dirMachine(t, t.TempDir())
				p := m.paths()
				path := map[string]string{
					"stats": totals.File(p.CacheDir), "history": history.File(p.CacheDir), "events": p.EventsFile(),
					"spare":  filepath.Join(spool.SpareDir(p.SpoolDir()), "planted"),
					"failed": filepath.Join(p.FailedDir(), "planted.json"),
				}[file]
				plantSpecial(t, kind, path)
				f := filepath.Join(t.TempDir(), "f")
				writeFile(t, f, []byte("content"))
				for _, args := range [][]string{{"daemon", "start"}, {"upload", "--key", "k1", f},
					{"monitor", "--once"}, {"upload", "--retry-failed"}, {"daemon", "stop"}} {
					r, err := m.client(kacheBin, 25*time.Second, args...)
					if err != nil {
						t.Fatalf("%v\n%s\ndaemon log:\n%s", err, r, m.logTail())
					}
					if r.code != 0 && args[0] == "daemon" || args[0] == "upload" && args[1] == "--key" && r.code != 0 {
						t.Errorf("want exit 0:\n%s\ndaemon log:\n%s", r, m.logTail())
					}
				}
				m.waitGone()
			})
		}
	}
}

// plantSpecial puts a FIFO or a symlink to /dev/zero at path.
func plantSpecial(t *testing.T, kind, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	if kind == "fifo" {
		err = syscall.Mkfifo(path, 0o600)
	} else {
		err = os.Symlink("/dev/zero", path)
	}
	if err != nil {
		t.Fatal(err)
	}
}
