package cli_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosBinarySwap (scenario d): parallel clients upload through
// bin/kache while the installation is replaced three times, kache and
// kache-daemon both: renamed over (what installers do), copied over (cp
// --remove-destination: the old file unlinked, the new one written, so a
// client started in between cannot even exec), and swapped to a symlink
// into a versioned directory (Homebrew's layout). At the end exactly one
// daemon runs, on the last binary, and every entry is on the remote.
func TestChaosBinarySwap(t *testing.T) {
	fig := newFigures(t, "kache and kache-daemon replaced (rename, copy, symlink swap) under parallel clients")
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "kache")
	// The last install is an hour in the future: newer than the test's own
	// build, which account and stop run (a newer client retires a daemon).
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	if err := copyInstall(bin, base); err != nil {
		t.Fatal(err)
	}
	es := randomFiles(t, t.TempDir(), "swap", pick(300, 2000))
	batches := make(chan entries)
	var wg sync.WaitGroup
	for range pick(20, 200) {
		wg.Add(1)
		go func() { defer wg.Done(); swapClient(t, m, fig, bin, batches) }()
	}
	swaps := []func(time.Time) error{
		func(at time.Time) error { return copyInstall(bin, at) },
		func(at time.Time) error { return copyOver(bin, at) },
		func(at time.Time) error { return linkSwap(bin, filepath.Join(root, "v4"), at) },
	}
	last := feedWithSwaps(t, fig, batches, split(es, 5), swaps, base)
	close(batches)
	wg.Wait()
	oneDaemonOn(t, m, bin, last.UnixNano())
	fig.Lost += account(t, m, srv, es, nil, 120*time.Second)
	fig.Entries, fig.Rounds = len(es), 1
	m.ok("daemon", "stop")
}

// feedWithSwaps hands the batches to the clients and lands the swaps at
// even intervals among them, each an hour newer than the one before. It
// returns the last binary's mtime, its epoch.
func feedWithSwaps(t *testing.T, fig *figures, batches chan<- entries, all []entries, swaps []func(time.Time) error, base time.Time) time.Time {
	at := base
	every := len(all) / (len(swaps) + 1)
	for i, b := range all {
		if n := i / every; i%every == 0 && n >= 1 && n <= len(swaps) {
			at = at.Add(time.Hour)
			if err := swaps[n-1](at); err != nil {
				t.Fatalf("swap %d: %v", n, err)
			}
			fig.fault()
		}
		batches <- b
	}
	return at
}

// swapClient uploads batches through bin. A client that cannot even be
// exec'd (the file is missing or half-written during a copy) handed
// nothing over; it is tried again, as a build would be re-run.
func swapClient(t *testing.T, m *machine, fig *figures, bin string, batches <-chan entries) {
	for b := range batches {
		for try := 0; ; try++ {
			r, err := m.client(bin, cmdTimeout, "upload", "--from", batchFileIn(t, b))
			if isExecFailure(err) && try < 100 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			fig.waited(r.took)
			if err != nil || r.code != 0 {
				t.Errorf("upload during swaps: %v\n%s", err, r)
			}
			break
		}
	}
}

// isExecFailure: the binary could not be started at all.
func isExecFailure(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ETXTBSY) || errors.Is(err, syscall.ENOEXEC)
}

// copyOver is `cp --remove-destination`: a running binary cannot be
// opened for writing (ETXTBSY), so the old file is unlinked and the new
// one written in its place, not atomically.
func copyOver(bin string, mtime time.Time) error {
	for _, name := range []string{"kache", "kache-daemon"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(kacheBin), name))
		if err != nil {
			return err
		}
		dst := filepath.Join(filepath.Dir(bin), name)
		if err := os.Remove(dst); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			return err
		}
		if err := os.Chtimes(dst, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

// linkSwap installs the pair in dir, then turns bin/kache and
// bin/kache-daemon into symlinks to it, each by an atomic rename of a new
// link over the old file.
func linkSwap(bin, dir string, mtime time.Time) error {
	if err := copyInstall(filepath.Join(dir, "kache"), mtime); err != nil {
		return err
	}
	for _, name := range []string{"kache-daemon", "kache"} {
		tmp := filepath.Join(filepath.Dir(bin), "."+name+".link")
		if err := os.Symlink(filepath.Join(dir, name), tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(filepath.Dir(bin), name)); err != nil {
			return err
		}
	}
	return nil
}

// oneDaemonOn waits until a daemon of the given epoch answers (starting
// one through bin if the last clients left none) and the daemons of older
// binaries have exited: then exactly one daemon process must remain.
func oneDaemonOn(t *testing.T, m *machine, bin string, want int64) {
	if r, err := m.client(bin, cmdTimeout, "daemon", "start"); err != nil || r.code != 0 {
		t.Fatalf("daemon start on the new binary: %v\n%s", err, r)
	}
	var seen string
	deadline := time.Now().Add(60 * time.Second)
	for {
		procs, err := procid.FindDaemons(m.sock)
		st, serr := m.client(bin, 10*time.Second, "daemon", "status", "--json")
		got := m.statusOf(st)
		if err == nil && len(procs) == 1 && serr == nil && st.code == 0 && got.Epoch == want {
			return
		}
		seen = fmt.Sprintf("%d daemon processes %v; status exit %d, pid %d, state %s, epoch %d (want %d)",
			len(procs), procs, st.code, got.Pid, got.State, got.Epoch, want)
		if time.Now().After(deadline) {
			t.Fatalf("not one daemon on the new binary after 60s: %s\n%s", seen, m.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statusOf decodes the daemon part of `daemon status --json` output, or
// a zero Status.
func (m *machine) statusOf(r result) rpc.Status {
	var rep struct {
		Daemon *rpc.Status `json:"daemon"`
	}
	if json.Unmarshal([]byte(r.out), &rep) != nil || rep.Daemon == nil {
		return rpc.Status{}
	}
	return *rep.Daemon
}
