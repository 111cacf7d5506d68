package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// Issue 16, defects 1 and 2: a stop during a hand-over, and chained
// hand-overs while a predecessor drains, never leave a daemon nobody can
// reach, nor two daemons on one socket.

// TestHandoverE2EStopDuringHandover (defect 1, first form): the binaries
// replaced and `kache daemon stop` run at once, or a little later while
// the successor starts: after stop returns no daemon runs, the run lock is
// free, and `kache daemon start` succeeds at once.
func TestHandoverE2EStopDuringHandover(t *testing.T) {
	for _, delay := range []time.Duration{0, 50 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			u := newUpgradeRun(t)
			u.daemon()
			u.replace()
			time.Sleep(delay) // the moment of the stop within the hand-over is the test's input, not a wait
			u.ok("daemon", "stop")
			noDaemonLeft(t, u, 5*time.Second)
			r := u.ok("daemon", "start")
			if r.took > 5*time.Second {
				t.Errorf("start after the stop took %s", r.took)
			}
			st := u.daemon()
			if st == nil {
				t.Fatal("no daemon answers after start")
			}
			oneDaemon(t, u.m.sock, st.Pid)
			u.ok("daemon", "stop")
			noDaemonLeft(t, u, 5*time.Second)
		})
	}
}

// TestHandoverE2EStopDrainingPredecessor (defect 1, second form): uploads
// in flight to a slow remote, the binaries replaced, then `kache daemon
// stop`: it stops the successor, says the predecessor still drains and
// where to look, the predecessor starts no other daemon, and `kache
// daemon start` right after succeeds at once.
func TestHandoverE2EStopDrainingPredecessor(t *testing.T) {
	u := newUpgradeRunDelay(t, time.Second)
	old := u.daemon()
	u.loadUploads(4)
	testenv.WaitFor(t, 30*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
	u.finish()
	u.replace()
	testenv.WaitFor(t, 20*time.Second, "the successor serving", func() bool { st := u.daemon(); return st != nil && st.Pid != old.Pid })
	if !pidAlive(old.Pid) {
		t.Skip("the predecessor finished its drain before the stop: nothing to test on this run")
	}
	r := u.ok("daemon", "stop")
	if !strings.Contains(r.out, "still drains") {
		t.Errorf("stop does not say the predecessor still drains:\n%s", r)
	}
	start := u.ok("daemon", "start")
	if start.took > 5*time.Second {
		t.Errorf("start after the stop took %s", start.took)
	}
	st := u.daemon()
	if st == nil {
		t.Fatal("no daemon answers after start")
	}
	testenv.WaitFor(t, 60*time.Second, "the predecessor to finish its drain", func() bool { return !pidAlive(old.Pid) })
	oneDaemon(t, u.m.sock, st.Pid)
	u.ok("daemon", "stop")
	noDaemonLeft(t, u, 10*time.Second)
	u.waitSpoolEmptyAfterRestart()
}

// TestHandoverE2EChained (defect 2): while the first daemon drains to a
// slow remote, its successor hands over in turn; the first daemon takes
// that normal exit for what it is, so in the end exactly one daemon runs
// and answers, and nothing handed over is lost.
func TestHandoverE2EChained(t *testing.T) {
	u := newUpgradeRunDelay(t, time.Second)
	a := u.daemon()
	u.bigUploads(2) // the first daemon drains these to its cap: it outlives its successor
	u.loadUploads(4)
	testenv.WaitFor(t, 30*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
	u.replace()
	b := 0
	testenv.WaitFor(t, 20*time.Second, "the first successor serving", func() bool {
		if st := u.daemon(); st != nil && st.Pid != a.Pid {
			b = st.Pid
		}
		return b != 0
	})
	u.replace()
	testenv.WaitFor(t, 20*time.Second, "the second successor serving", func() bool {
		st := u.daemon()
		return st != nil && st.Pid != a.Pid && st.Pid != b
	})
	u.finish()
	testenv.WaitFor(t, 90*time.Second, "both predecessors to exit", func() bool { return !pidAlive(a.Pid) && !pidAlive(b) })
	st := u.daemon()
	if st == nil {
		t.Fatal("no daemon answers after the chain")
	}
	oneDaemon(t, u.m.sock, st.Pid)
	u.waitSpoolEmpty(120 * time.Second)
	inBucket(t, u.srv, u.uploaded)
}

// noDaemonLeft waits until no daemon process of the socket runs and the
// run lock is free.
func noDaemonLeft(t *testing.T, u *upgradeRun, within time.Duration) {
	t.Helper()
	testenv.WaitFor(t, within, "no daemon left and the run lock free", func() bool {
		procs, err := procid.FindDaemons(u.m.sock)
		return err == nil && len(procs) == 0 && !runlock.LockHeld(u.m.paths().RunLock())
	})
}

// waitSpoolEmptyAfterRestart starts a daemon to upload what the stops
// left in the spool, and waits for it to be uploaded.
func (u *upgradeRun) waitSpoolEmptyAfterRestart() {
	u.t.Helper()
	u.ok("daemon", "start")
	u.waitSpoolEmpty(120 * time.Second)
	inBucket(u.t, u.srv, u.uploaded)
	u.ok("daemon", "stop")
}

// bigUploads uploads n entries of 256 KiB: through the delaying proxy
// (1 s per 32 KiB read) each takes 8 s or more.
func (u *upgradeRun) bigUploads(n int) {
	dir := u.t.TempDir()
	for i := range n {
		key := fmt.Sprintf("big-%d", i)
		path := filepath.Join(dir, key)
		writeFile(u.t, path, append([]byte(key), bytes.Repeat([]byte("x"), 256<<10)...))
		u.ok("upload", "--key", key, path)
		u.mu.Lock()
		u.uploaded[key] = path
		u.mu.Unlock()
	}
}

// TestHandoverE2ETwoInstallations (issue 16, defect 5): a newer
// installation's client and an older one's upload in turn, 60 times, to a
// slow remote (so each daemon that exits drains for a while). The older
// installation's daemon gives way to the newer once; the older client then
// leaves its intents to the newer installation's daemon instead of
// starting its own successor, so the daemon does not flap (31 generations
// before), and every entry is uploaded.
func TestHandoverE2ETwoInstallations(t *testing.T) {
	u := newUpgradeRun(t) // the older installation, an hour old
	newer := filepath.Join(t.TempDir(), "newer", "kache")
	if err := copyInstall(newer, time.Now()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	es := entries{}
	for i := range 60 {
		key := fmt.Sprintf("two-%02d", i)
		es[key] = filepath.Join(dir, key)
		writeFile(t, es[key], []byte("entry "+key))
		bin := []string{u.bin, newer}[i%2]
		if r, err := u.m.client(bin, cmdTimeout, "upload", "--key", key, es[key]); err != nil || r.code != 0 {
			t.Fatalf("upload %s with %s: %v\n%s", key, bin, err, r)
		}
	}
	if r, err := u.m.client(newer, 2*time.Minute, "flush", "--timeout", "90s"); err != nil || r.code != 0 {
		t.Fatalf("flush: %v\n%s", err, r)
	}
	inBucket(t, u.srv, es)
	gens, err := history.Load(history.File(u.m.cache))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	stale := 0
	for _, g := range gens {
		lines = append(lines, g.Line())
		if g.End != nil && g.End.Reason == "epoch_stale" {
			stale++
		}
	}
	t.Logf("%d daemon generations:\n%s", len(gens), strings.Join(lines, "\n"))
	if stale > 1 || len(gens) > 3 {
		t.Errorf("%d generations, %d of them exited for the newer installation: the older one's daemon must give way once, not again and again", len(gens), stale)
	}
	u.m.client(newer, cmdTimeout, "daemon", "stop")
}

// TestHandoverE2EHalfInstall (issue 16, defect 4): an installer copies
// the client, then, a moment later, the daemon. The daemon waits for the
// installation to settle and hands over once, to a successor that runs
// the new daemon build and says so, with no client of the new build
// needed to move it.
func TestHandoverE2EHalfInstall(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	bin := r.copyBin("bin/kache", time.Now().Add(-time.Hour))
	d := r.runDaemon(bin)
	old := r.waitDaemon("daemon up", anyDaemon)
	now := time.Now()
	if err := copyInstall(filepath.Join(r.dir, "client-only", "x"), now); err != nil { // "kache" alone, beside nothing
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(r.dir, "client-only", "x"), bin); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the installer's gap between the two files: the test's input
	build := otherBuild(t, filepath.Join(filepath.Dir(kacheBin), "kache-daemon"), filepath.Join(r.dir, "bin", "kache-daemon"), now)
	next := r.waitDaemon("the successor running the new daemon", func(s *rpc.Status) bool { return s.Pid != old.Pid && s.Build == build })
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("old daemon exit %d, want 0", code)
	}
	staysAt := time.Now().Add(time.Second)
	lcWait(t, 2*time.Second, "a second of the successor serving", func() bool { return time.Now().After(staysAt) })
	if st := r.daemonStatus(); st == nil || st.Pid != next.Pid {
		t.Fatalf("the successor pid %d does not serve on: %+v", next.Pid, st)
	}
	if n := strings.Count(r.logText(), "to=handing_over"); n != 1 {
		t.Errorf("%d hand-overs for one installation, want 1:\n%s", n, r.logText())
	}
	r.ok(bin, "daemon", "stop")
}
