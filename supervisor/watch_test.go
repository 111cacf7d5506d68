package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/epoch"
)

// fakeExe writes a stand-in executable whose replacement the watcher is to
// notice, returning its path and mtime epoch.
func fakeExe(t *testing.T) (string, int64) {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "kache")
	if err := os.WriteFile(exe, []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe, epoch.Of(exe)
}

// TestWatcherRenameOverBinary: an installer's rename of a new file over
// the binary moves the daemon to epoch_stale with no client involved.
func TestWatcherRenameOverBinary(t *testing.T) {
	exe, epoch := fakeExe(t)
	r := newRig(t, func(o *Options) { o.Exe, o.Epoch, o.WatchBinary = exe, epoch, true }).start()
	next := exe + ".new"
	if err := os.WriteFile(next, []byte("v2 longer"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, exe); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(10 * time.Second); !errors.Is(err, ErrEpochStale) {
		t.Fatalf("Run = %v, want ErrEpochStale after the binary was replaced", err)
	}
	if got, want := r.log.path(), "starting -> running(ready) -> handing_over(binary_changed) -> epoch_stale(handover_unavailable) -> stopped(drain_done)"; got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
}

// TestWatcherReplacedWhileStarting: a binary replaced after the daemon read
// its epoch but before the watch began still counts (no event would come).
func TestWatcherReplacedWhileStarting(t *testing.T) {
	exe, epoch := fakeExe(t)
	later := time.Unix(0, epoch).Add(time.Second)
	if err := os.Chtimes(exe, later, later); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(o *Options) { o.Exe, o.Epoch, o.WatchBinary = exe, epoch, true })
	go func() { r.done <- Run(context.Background(), r.o) }()
	if err := r.wait(10 * time.Second); !errors.Is(err, ErrEpochStale) {
		t.Fatalf("Run = %v, want ErrEpochStale for a binary replaced during start", err)
	}
}
