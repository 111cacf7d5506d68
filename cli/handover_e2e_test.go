package cli_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// The hand-over end to end (docs/lifecycle.md, "Hand-over"): real binaries
// replaced on disk under load, a real versitygw behind a delaying proxy so
// the old daemon has uploads in flight for a while, real processes and
// signals.

// TestHandoverE2EUnderLoad: an upgrade while 20 clients run remote checks
// and uploads in a loop. No remote check misses, no upload is kept for
// later, every upload lands in the bucket byte for byte, the successor
// serves the new epoch, the old daemon is gone within the drain cap, and
// exactly one daemon is left.
func TestHandoverE2EUnderLoad(t *testing.T) {
	u := newUpgradeRun(t)
	old := u.daemon()
	u.load()
	testenv.WaitFor(t, 20*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
	replaced := u.replace()
	newEpoch := install.Epoch(u.bin)
	var next *rpc.Status
	testenv.WaitFor(t, 20*time.Second, "the successor serving", func() bool {
		next = u.daemon()
		return next != nil && next.Pid != old.Pid && next.Epoch == newEpoch
	})
	serving := time.Since(replaced)
	testenv.WaitFor(t, 30*time.Second, "the old daemon to exit", func() bool { return !pidAlive(old.Pid) })
	gone := time.Since(replaced)
	u.finish()
	u.waitSpoolEmpty(120 * time.Second)
	t.Logf("replace -> successor serving %s, old daemon gone after %s (drain cap 20s); longest check %s, longest upload %s; %d uploads, %d misses",
		serving.Round(time.Millisecond), gone.Round(time.Millisecond), u.longest.Round(time.Millisecond),
		u.longestUpload.Round(time.Millisecond), len(u.uploaded), len(u.misses))
	if len(u.misses) > 0 {
		t.Errorf("%d remote checks missed across the upgrade, first: %s", len(u.misses), u.misses[0])
	}
	if len(u.starved) > 0 {
		t.Logf("%d checks starved past their 100 ms dial on this loaded machine: %v", len(u.starved), u.starved)
	}
	if len(u.fails) > 0 {
		t.Errorf("%d uploads not queued by a daemon, first: %s", len(u.fails), u.fails[0])
	}
	inBucket(t, u.srv, u.uploaded)
	oneDaemon(t, u.m.sock, next.Pid)
	u.totalsCountAll()
}

// TestHandoverE2EBrokenSuccessor: a new kache-daemon that exits at once
// cannot take over. The old daemon keeps serving (same pid, running, it
// still uploads), status says why, and once a working build is installed
// the next try hands over to it.
func TestHandoverE2EBrokenSuccessor(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	remote := filepath.Join(r.dir, "remote")
	r.env = append(r.env, "KACHE_REMOTE_DIR="+remote)
	bin := r.copyBin("bin/kache", time.Now().Add(-time.Hour))
	d := r.runDaemon(bin)
	old := r.waitDaemon("daemon up", anyDaemon)
	broken := filepath.Join(r.dir, "bin", ".kache-daemon.broken")
	writeFile(t, broken, []byte("#!/bin/sh\necho 'kache-daemon: this build is broken' >&2\nexit 3\n"))
	if err := os.Chmod(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(broken, filepath.Join(r.dir, "bin", "kache-daemon")); err != nil {
		t.Fatal(err)
	}
	var st *rpc.Status
	lcWait(t, 20*time.Second, "status to report the failed hand-over", func() bool {
		st = r.daemonStatus()
		return st != nil && st.Handover != "" && st.State == "running"
	})
	if st.Pid != old.Pid || st.State != "running" || !strings.Contains(st.Handover, "exit status 3") {
		t.Fatalf("after a broken successor: pid %d state %s handover %q; want pid %d running, the exit status named", st.Pid, st.State, st.Handover, old.Pid)
	}
	if out := r.ok(bin, "daemon", "status").stdout; !strings.Contains(out, "handover: failed: ") {
		t.Errorf("status text does not say the hand-over failed:\n%s", out)
	}
	src := filepath.Join(r.dir, "entry.bin")
	writeFile(t, src, []byte("entry"))
	r.ok(bin, "upload", "--key", "k1", src)
	lcWait(t, 20*time.Second, "the old daemon to upload k1", func() bool {
		m, _ := filepath.Glob(filepath.Join(remote, "*", "k1*"))
		n, _ := filepath.Glob(filepath.Join(remote, "k1*"))
		return len(m)+len(n) > 0
	})
	r.stillRunning(d, old.Pid, 300*time.Millisecond)

	r.copyBin("bin/kache", time.Now()) // a working build, kache and kache-daemon
	next := r.waitDaemon("the hand-over to the working build", func(s *rpc.Status) bool { return s.Pid != old.Pid })
	if next.Handover != "" || next.Epoch != install.Epoch(bin) {
		t.Errorf("successor: handover %q epoch %d, want none and %d", next.Handover, next.Epoch, install.Epoch(bin))
	}
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("old daemon exit %d after handing over, want 0", code)
	}
	r.ok(bin, "daemon", "stop")
}

// TestHandoverE2EKill: SIGKILL of the old daemon, and separately of the
// successor, at a random moment of the hand-over while clients upload.
// Nothing is lost (every upload ends in the bucket: claims free with the
// killed process, intents stay in the spool) and one daemon is left.
func TestHandoverE2EKill(t *testing.T) {
	for _, victim := range []string{"old", "successor"} {
		t.Run(victim, func(t *testing.T) {
			u := newUpgradeRun(t)
			old := u.daemon()
			u.loadUploads(6)
			testenv.WaitFor(t, 20*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
			delay := time.Duration(rand.IntN(300)) * time.Millisecond
			u.replace()
			pid := old.Pid
			if victim == "successor" {
				testenv.WaitFor(t, 20*time.Second, "the successor process", func() bool {
					procs, _ := procid.FindDaemons(u.m.sock)
					for _, p := range procs {
						if p.Pid != old.Pid {
							pid = p.Pid
							return true
						}
					}
					return false
				})
			}
			time.Sleep(delay) // the random moment: what is tested is any moment
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Logf("killed the %s (pid %d) %s into the hand-over", victim, pid, delay)
			before := u.count()
			testenv.WaitFor(t, 30*time.Second, "clients to upload across the kill", func() bool { return u.count() >= before+12 })
			u.finish()
			last := filepath.Join(t.TempDir(), "last")
			writeFile(t, last, []byte("the last entry"))
			u.ok("upload", "--key", "last", last) // brings a daemon up if none is left
			u.uploaded["last"] = last
			u.waitSpoolEmpty(120 * time.Second)
			inBucket(t, u.srv, u.uploaded)
			var procs []procid.ProcInfo
			testenv.WaitFor(t, 60*time.Second, "exactly one daemon (the old one within its drain cap of 20s)", func() bool {
				procs, _ = procid.FindDaemons(u.m.sock)
				if len(procs) != 1 {
					t.Logf("daemons: %+v; answering: %+v", procs, u.daemon())
				}
				return len(procs) == 1
			})
		})
	}
}

// TestHandoverE2EEqualMtimes: Nix gives every build the mtime 1 s, so the
// epoch cannot tell two builds apart; the build ID does. Replacing the
// installation with another build of equal mtime hands over once; then a
// client of the first build (another installation) and one of the new
// build, used alternately, change nothing: no flapping.
func TestHandoverE2EEqualMtimes(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	nix := time.Unix(1, 0)
	bin := r.copyBin("bin/kache", nix)
	first := r.copyBin("first/kache", nix)
	d := r.runDaemon(bin)
	old := r.waitDaemon("daemon up", anyDaemon)
	build := otherBuild(t, filepath.Join(r.dir, "bin", "kache-daemon"), filepath.Join(r.dir, "bin", "kache-daemon"), nix)
	next := r.waitDaemon("the hand-over to the other build", func(s *rpc.Status) bool { return s.Pid != old.Pid })
	if next.Build != build || next.Epoch != old.Epoch {
		t.Fatalf("successor build %q epoch %d, want %q and the same epoch %d", next.Build, next.Epoch, build, old.Epoch)
	}
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("old daemon exit %d, want 0", code)
	}
	src := filepath.Join(r.dir, "entry.bin")
	writeFile(t, src, []byte("entry"))
	for i := range 6 {
		client := []string{first, bin}[i%2]
		r.ok(client, "stats")
		r.ok(client, "upload", "--key", fmt.Sprintf("k%d", i), src)
	}
	if st := r.daemonStatus(); st == nil || st.Pid != next.Pid || st.State != "running" {
		t.Fatalf("after clients of both builds: %+v, want pid %d running", st, next.Pid)
	}
	if n := strings.Count(r.logText(), "to=handing_over"); n != 1 {
		t.Errorf("%d hand-overs, want exactly 1:\n%s", n, r.logText())
	}
	r.ok(bin, "daemon", "stop")
}

// TestHandoverE2EConfigChange: a valid change of config.toml hands over
// once to a successor that reads it; an invalid one changes nothing but is
// shown in status; a client whose shell differs sees the keys in status.
func TestHandoverE2EConfigChange(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	conf := filepath.Join(r.dir, "config.toml")
	writeFile(t, conf, []byte("drain_timeout_secs = 30\n"))
	r.env = append(r.env, "KACHE_CONFIG="+conf)
	bin := r.copyBin("bin/kache", time.Now().Add(-time.Hour))
	d := r.runDaemon(bin)
	old := r.waitDaemon("daemon up", anyDaemon)

	writeFile(t, conf+".new", []byte("drain_timeout_secs = 30\ndaemon_idle_timeout_secs = 900\n"))
	if err := os.Rename(conf+".new", conf); err != nil {
		t.Fatal(err)
	}
	next := r.waitDaemon("the hand-over for the new configuration", func(s *rpc.Status) bool { return s.Pid != old.Pid })
	if next.IdleTimeoutS != 900 || next.Config == old.Config {
		t.Fatalf("successor idle timeout %d config %s, want 900 and a new fingerprint (old %s)", next.IdleTimeoutS, next.Config, old.Config)
	}
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("old daemon exit %d, want 0", code)
	}
	res := r.run(bin, []string{"KACHE_S3_BUCKET=elsewhere"}, "daemon", "status")
	if !strings.Contains(res.stdout, "config:   the daemon runs another configuration (s3.bucket)") {
		t.Errorf("status does not show the drift in s3.bucket:\n%s%s", res.stdout, res.stderr)
	}

	writeFile(t, conf+".new", []byte("daemon_idle_timeout_secs = \"soon\"\n"))
	if err := os.Rename(conf+".new", conf); err != nil {
		t.Fatal(err)
	}
	var st *rpc.Status
	lcWait(t, 20*time.Second, "status to show the refused change", func() bool {
		st = r.daemonStatus()
		return st != nil && st.ConfigError != ""
	})
	if st.Pid != next.Pid || st.State != "running" || !strings.Contains(st.ConfigError, "daemon_idle_timeout_secs") {
		t.Fatalf("after an invalid config: pid %d state %s config_error %q; want pid %d running, the key named", st.Pid, st.State, st.ConfigError, next.Pid)
	}
	if n := strings.Count(r.logText(), "to=handing_over"); n != 1 {
		t.Errorf("%d hand-overs, want exactly 1", n)
	}
	r.ok(bin, "daemon", "stop")
}

// cutByKill reports whether a failed check's message is one of the ways a
// connection ends when the process at its other end is killed.
func cutByKill(msg string) bool {
	for _, cut := range []string{"connection reset by peer", "closed the connection during", "broken pipe"} {
		if strings.Contains(msg, cut) {
			return true
		}
	}
	return false
}

// TestHandoverE2ESuccessorLost: the successor dies (SIGKILL) after it took
// over, while the old daemon still drains. The old daemon kept the socket
// listening and starts another successor itself, before its own exit; no
// remote check misses meanwhile (connections wait in the backlog).
func TestHandoverE2ESuccessorLost(t *testing.T) {
	u := newUpgradeRunDelay(t, time.Second) // a drain of seconds
	old := u.daemon()
	u.load()
	testenv.WaitFor(t, 30*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
	u.replace()
	var first *rpc.Status
	testenv.WaitFor(t, 20*time.Second, "the successor serving", func() bool {
		first = u.daemon()
		return first != nil && first.Pid != old.Pid
	})
	killed := time.Now()
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var second *rpc.Status
	testenv.WaitFor(t, 20*time.Second, "another successor serving", func() bool {
		second = u.daemon()
		return second != nil && second.Pid != old.Pid && second.Pid != first.Pid
	})
	testenv.WaitFor(t, 60*time.Second, "the old daemon to exit", func() bool { return !pidAlive(old.Pid) })
	u.finish()
	u.waitSpoolEmpty(120 * time.Second)
	// The old daemon, not a client, started it: its log says so (a check
	// of the old pid being alive raced its drain on a loaded machine).
	log, _ := os.ReadFile(u.m.paths().LogFile())
	if !strings.Contains(string(log), fmt.Sprintf(`msg="another successor serves" pid=%d`, second.Pid)) {
		t.Errorf("the old daemon's log does not say it started pid %d: a client started it, not the old daemon", second.Pid)
	}
	// A check on the killed successor's connection at the moment of the
	// SIGKILL is cut by the kernel (a reset, an EOF before the answer, or a
	// broken pipe when the request is written after the close): that is the
	// kill, not the hand-over. Only a check that was running at that moment
	// and failed that way is counted so.
	var misses, cut []miss
	for _, m := range u.misses {
		if m.spans(killed) && cutByKill(m.msg) {
			cut = append(cut, m)
		} else {
			misses = append(misses, m)
		}
	}
	if len(cut) > 0 {
		t.Logf("%d checks were on the killed successor's connections: %v", len(cut), cut)
	}
	if len(misses) > 0 {
		t.Errorf("%d remote checks missed, first: %s", len(misses), misses[0])
	}
	if len(u.starved) > 0 {
		t.Logf("%d checks starved past their 100 ms dial on this loaded machine: %v", len(u.starved), u.starved)
	}
	inBucket(t, u.srv, u.uploaded)
	oneDaemon(t, u.m.sock, second.Pid)
}
