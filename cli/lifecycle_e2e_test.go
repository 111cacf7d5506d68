package cli_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// The self-healing lifecycle (docs/lifecycle.md) end to end, with the
// harness of lifecycle_rig_test.go: the build epoch and the binary watcher.
// lifecycle_service_e2e_test.go holds the service-manager contract and
// socket activation; the restart tiers, the offline clients and the exit
// codes are testscript scenarios (testdata/script/lifecycle_*.txtar).

// TestLifecycleE2ENewerClient: a newer client's stats is answered, then the
// old daemon drains and exits 75; the next command of the new binary runs
// a fresh daemon of its epoch. status only reports the difference.
func TestLifecycleE2ENewerClient(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Now()
	oldBin, newBin := r.copyBin("old/kache", now.Add(-time.Hour)), r.copyBin("new/kache", now)
	oldEpoch, newEpoch := install.Epoch(oldBin), install.Epoch(newBin)
	if v := r.ok(newBin, "--version").stdout; !strings.Contains(v, "build epoch "+itoa64(newEpoch)) {
		t.Fatalf("--version = %q, want epoch %d (mtime in ns)", v, newEpoch)
	}
	d := r.runDaemon(oldBin)
	pid := r.waitDaemon("old daemon up", anyDaemon).Pid

	s := r.statusJSON(newBin)
	if s.Epoch == nil || s.Epoch.Binary != newEpoch || s.Epoch.Daemon != oldEpoch || s.Epoch.Relation != "client_newer" {
		t.Fatalf("status --json epoch = %+v, want binary %d, daemon %d, client_newer", s.Epoch, newEpoch, oldEpoch)
	}
	text := r.ok(newBin, "daemon", "status").stdout
	for _, want := range []string{"epoch " + itoa64(newEpoch), "epoch " + itoa64(oldEpoch), "this kache binary is newer than the running daemon"} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
	r.stillRunning(d, pid, 300*time.Millisecond) // status only reports

	if out := r.ok(newBin, "stats").stdout; !strings.Contains(out, "uploads:") {
		t.Fatalf("stats from the newer client was not answered: %q", out)
	}
	if code := d.wait(t, 40*time.Second); code != 75 {
		t.Fatalf("old daemon exited %d, want 75; stderr:\n%s", code, d.stderr.String())
	}
	if rec := r.lastExit(); rec.Reason != "epoch_stale" {
		t.Errorf("exit record reason %q, want epoch_stale", rec.Reason)
	}
	src := filepath.Join(r.dir, "entry.bin")
	if err := os.WriteFile(src, []byte("entry"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.ok(newBin, "upload", "--key", "k1", src)
	st := r.waitDaemon("fresh daemon of the new epoch", func(st *rpc.Status) bool { return st.Epoch == newEpoch })
	if st.Pid == pid {
		t.Fatalf("still the old pid %d", pid)
	}
}

// TestLifecycleE2ENewerClientUpload: the first thing after an update is
// usually an upload. The old daemon takes it, uploads it while it drains,
// and exits 75; nothing is lost.
func TestLifecycleE2ENewerClientUpload(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	remote := filepath.Join(r.dir, "remote")
	r.env = append(r.env, "KACHE_REMOTE_DIR="+remote)
	now := time.Now()
	oldBin, newBin := r.copyBin("old/kache", now.Add(-time.Hour)), r.copyBin("new/kache", now)
	d := r.runDaemon(oldBin)
	r.waitDaemon("old daemon up", anyDaemon)
	src := filepath.Join(r.dir, "entry.bin")
	if err := os.WriteFile(src, []byte("entry"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := r.ok(newBin, "upload", "--key", "k1", src).stdout; !strings.Contains(out, "queued 1") {
		t.Fatalf("upload from the newer client: %q, want it queued by the old daemon", out)
	}
	if code := d.wait(t, 40*time.Second); code != 75 {
		t.Fatalf("old daemon exited %d, want 75; stderr:\n%s", code, d.stderr.String())
	}
	rec := r.lastExit()
	if rec.Reason != "epoch_stale" {
		t.Errorf("exit record %+v: want epoch_stale", rec)
	}
	_, kept := os.Stat(filepath.Join(r.p.SpoolDir(), "k1.json"))
	uploaded, _ := filepath.Glob(filepath.Join(remote, ".v2", "k1"))
	if (kept == nil) == (len(uploaded) > 0) || (kept == nil) != (rec.Left == 1) {
		t.Fatalf("k1 must be either uploaded (remote: %v) or kept for the next daemon (spool: %v, left %d)", uploaded, kept, rec.Left)
	}
	t.Logf("k1 uploaded: %v; exit record %+v", uploaded, rec)
}

// TestLifecycleE2EOlderClient: an older client just uses the newer daemon.
func TestLifecycleE2EOlderClient(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Now()
	oldBin, newBin := r.copyBin("old/kache", now.Add(-time.Hour)), r.copyBin("new/kache", now)
	d := r.runDaemon(newBin)
	pid := r.waitDaemon("daemon up", anyDaemon).Pid
	r.ok(oldBin, "stats")
	r.ok(oldBin, "build-started", "--session", "s1")
	s := r.statusJSON(oldBin)
	if s.Epoch == nil || s.Epoch.Relation != "daemon_newer" || !strings.Contains(s.Epoch.Note, "keeps using it") {
		t.Fatalf("status from the older client: epoch %+v, want daemon_newer", s.Epoch)
	}
	r.stillRunning(d, pid, 500*time.Millisecond)
}

// TestLifecycleE2EBinaryReplaced: the watcher hands over to the new binary,
// with no client, for each way an update lands on disk: the successor
// serves on the same socket with the new epoch, the old daemon exits 0
// (reason handed_over) and exactly one daemon is left. The time from the
// replace to the successor serving is logged (target 150 ms).
func TestLifecycleE2EBinaryReplaced(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		install func(r *rig) (exe string)              // the path the daemon is started by
		prepare func(r *rig, exe string) (swap func()) // stages the update; swap lands it
	}{
		{"in place", installPlain, replaceInPlace},
		{"rename over it", installPlain, replaceByRename},
		{"symlink swap", installLink, replaceLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			exe := c.install(r)
			d := r.runDaemon(exe)
			st := r.waitDaemon("daemon up", anyDaemon)
			if st.Exe != exe {
				t.Fatalf("daemon watches %s, want the path it was started by, %s", st.Exe, exe)
			}
			swap := c.prepare(r, exe)
			begin := time.Now()
			swap()
			next := r.waitDaemon("the successor", func(s *rpc.Status) bool { return s.Pid != st.Pid })
			serving := time.Since(begin)
			if next.Epoch != install.Epoch(exe) || next.Exe != exe {
				t.Errorf("successor epoch %d exe %s, want %d %s", next.Epoch, next.Exe, install.Epoch(exe), exe)
			}
			if code := d.wait(t, 20*time.Second); code != 0 {
				t.Fatalf("old daemon exit %d, want 0 after the hand-over; stderr:\n%s", code, d.stderr.String())
			}
			if rec := r.lastExit(); rec.Reason != "handed_over" || rec.Code != 0 {
				t.Errorf("exit record %+v; want reason handed_over, code 0", rec)
			}
			if procs, _ := procid.FindDaemons(r.p.Socket); len(procs) != 1 {
				t.Errorf("%d daemons serve the socket after the hand-over, want 1", len(procs))
			}
			t.Logf("%s: replace to successor serving %s (target 150ms)", c.name, serving.Round(time.Millisecond))
			if serving > 5*time.Second {
				t.Errorf("took %s to hand over", serving)
			}
			r.ok(exe, "daemon", "stop")
		})
	}
}

func installPlain(r *rig) string { return r.copyBin("bin/kache", time.Now().Add(-time.Hour)) }

// replaceInPlace writes the running binary's bytes back into it. Linux
// refuses to open a running executable for writing (ETXTBSY), so there the
// only in-place update is to its metadata: a new mtime, i.e. a new epoch.
func replaceInPlace(r *rig, exe string) func() {
	data, err := os.ReadFile(exe)
	if err != nil {
		r.t.Fatal(err)
	}
	return func() {
		f, err := os.OpenFile(exe, os.O_WRONLY|os.O_TRUNC, 0)
		if errors.Is(err, syscall.ETXTBSY) {
			r.t.Log("the kernel refuses writes to a running binary (ETXTBSY); updating its mtime in place instead")
			now := time.Now()
			err = os.Chtimes(exe, now, now)
		} else if err == nil {
			_, err = f.Write(data)
			f.Close()
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

// replaceByRename is what installers do: copy beside it, rename over it.
// The copy's own events in the directory must not trigger anything.
func replaceByRename(r *rig, exe string) func() {
	tmp := r.copyBin("bin/.kache.tmp", time.Now())
	return func() {
		if err := os.Rename(tmp, exe); err != nil {
			r.t.Fatal(err)
		}
	}
}

// installLink is a Homebrew-style layout: bin/kache -> ../v1/kache.
func installLink(r *rig) string {
	r.copyBin("v1/kache", time.Now().Add(-time.Hour))
	link := filepath.Join(r.dir, "bin", "kache")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Symlink("../v1/kache", link); err != nil {
		r.t.Fatal(err)
	}
	return link
}

// replaceLink swaps the link to a new version with ln -sfn.
func replaceLink(r *rig, link string) func() {
	r.copyBin("v2/kache", time.Now())
	return func() {
		if out, err := exec.Command("ln", "-sfn", "../v2/kache", link).CombinedOutput(); err != nil {
			r.t.Fatalf("ln -sfn: %v: %s", err, out)
		}
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// `daemon restart` while `daemon start` runs in a loop beside it: every
// restart succeeds (a daemon a start brought up meanwhile is a kache
// daemon, never "not a kache daemon"), and one daemon is left.
func TestLifecycleE2ERestartRacingStarts(t *testing.T) {
	r := newRig(t)
	bin := r.copyBin("bin/kache", time.Now().Add(-time.Hour))
	r.ok(bin, "daemon", "start")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					r.run(bin, nil, "daemon", "start")
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := range 10 {
		if res := r.run(bin, nil, "daemon", "restart"); res.code != 0 {
			close(stop)
			<-done
			t.Fatalf("restart %d racing starts: exit %d\nstdout: %s\nstderr: %s", i, res.code, res.stdout, res.stderr)
		}
	}
	close(stop)
	<-done
	st := r.waitDaemon("a daemon after the race", func(*rpc.Status) bool { return true })
	testenv.WaitFor(t, 10*time.Second, "one daemon left", func() bool {
		procs, err := procid.FindDaemons(r.p.Socket)
		return err == nil && len(procs) == 1 && procs[0].Pid == st.Pid
	})
}
