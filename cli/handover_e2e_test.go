package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildid"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// The hand-over end to end (docs/lifecycle.md, "Hand-over"): real binaries
// replaced on disk under load, a real versitygw behind a delaying proxy so
// the old daemon has uploads in flight for a while, real processes and
// signals.

// loadClients is how many clients run remote checks and uploads in a loop.
const loadClients = 20

// upgradeRun is one installation under load: its binary, the machine, and
// what the clients saw.
type upgradeRun struct {
	t      *testing.T
	m      *machine
	srv    *s3test.Server
	bin    string
	known  []string // keys in the bucket before the load starts
	mu     sync.Mutex
	misses []string // remote checks not answered found, with why
	fails  []string // uploads that did not hand their entry to a daemon
	longest,
	longestUpload time.Duration
	uploaded entries
	checks   []sample // every remote check, for the figures
	stop     chan struct{}
	wg       sync.WaitGroup
}

// newUpgradeRun installs kache (an hour old) beside a slowed S3 and puts a
// few entries in the bucket for the remote checks to find.
func newUpgradeRun(t *testing.T, extraEnv ...string) *upgradeRun {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, 150*time.Millisecond)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	m.set(extraEnv...)
	m.writeConfig("drain_timeout_secs = 20\n")
	u := &upgradeRun{t: t, m: m, srv: srv, uploaded: entries{}, stop: make(chan struct{})}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(m.paths().LogFile())
			t.Logf("daemon log:\n%s", b)
		}
	})
	u.bin = filepath.Join(t.TempDir(), "bin", "kache")
	if err := copyInstall(u.bin, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	known := randomFiles(t, t.TempDir(), "known", 4)
	u.ok("upload", "--from", batchFile(t, known))
	u.waitSpoolEmpty(60 * time.Second)
	for k := range known {
		u.known = append(u.known, k)
	}
	return u
}

// run runs the installed kache (not the test's build) on the machine.
func (u *upgradeRun) run(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, u.bin, args...)
	cmd.Env = u.m.environ()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, out: out.String(), err: errb.String(), took: time.Since(start)}
	if err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else {
			r.err += err.Error()
		}
	}
	return r
}

func (u *upgradeRun) ok(args ...string) result {
	u.t.Helper()
	r := u.run(args...)
	if r.code != 0 {
		u.t.Fatalf("%s", r)
	}
	return r
}

// load starts the clients: each checks a known key, then uploads a fresh
// file, until stop.
func (u *upgradeRun) load() {
	dir := u.t.TempDir()
	for c := range loadClients {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-u.stop:
					return
				default:
				}
				u.check(u.known[(c+i)%len(u.known)])
				u.upload(dir, fmt.Sprintf("c%02d-%04d", c, i))
			}
		}()
	}
}

// check runs one remote check; anything but a hit is a miss.
func (u *upgradeRun) check(key string) {
	start := time.Now()
	r := u.run("check", "--deadline", "10s", key)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.checks = append(u.checks, sample{start: start, took: r.took, hit: r.code == 0})
	u.longest = max(u.longest, r.took)
	if r.code != 0 {
		u.misses = append(u.misses, fmt.Sprintf("%s after %s: %s", key, r.took.Round(time.Millisecond), strings.TrimSpace(r.err)))
	}
}

// upload writes a fresh file and uploads it; it must be queued by a daemon,
// not kept for a later one nor left for a successor to start.
func (u *upgradeRun) upload(dir, key string) {
	path := filepath.Join(dir, key)
	writeFile(u.t, path, []byte("entry "+key+" "+strings.Repeat("x", 512)))
	r := u.run("upload", "--key", key, path)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.uploaded[key] = path
	u.longestUpload = max(u.longestUpload, r.took)
	if r.code != 0 || !strings.Contains(r.out, "queued 1") || r.err != "" {
		u.fails = append(u.fails, fmt.Sprintf("%s: exit %d after %s: %s %s", key, r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.out), strings.TrimSpace(r.err)))
	}
}

// finish stops the clients.
func (u *upgradeRun) finish() {
	close(u.stop)
	u.wg.Wait()
}

// replace installs a newer build over the running one, as an installer
// does (copies beside them renamed over them), and returns when the first
// rename landed.
//
// The copies are written by cp, not by this process: a file this process
// holds open for writing while another goroutine forks a client would be
// inherited by that child for an instant, and exec of it would fail with
// ETXTBSY (golang/go#22315).
func (u *upgradeRun) replace() time.Time {
	mtime := time.Now()
	dir := filepath.Dir(u.bin)
	names := []string{"kache-daemon", "kache"}
	for _, name := range names {
		tmp := filepath.Join(dir, "."+name+".new")
		if out, err := exec.Command("cp", filepath.Join(filepath.Dir(kacheBin), name), tmp).CombinedOutput(); err != nil {
			u.t.Fatalf("cp: %v: %s", err, out)
		}
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			u.t.Fatal(err)
		}
	}
	landed := time.Now()
	for _, name := range names {
		if err := os.Rename(filepath.Join(dir, "."+name+".new"), filepath.Join(dir, name)); err != nil {
			u.t.Fatal(err)
		}
	}
	return landed
}

// daemon is the daemon answering now, or nil.
func (u *upgradeRun) daemon() *rpc.Status {
	c := &rpc.Client{Socket: u.m.sock, CallTimeout: 2 * time.Second}
	defer c.Close()
	st, err := c.Status(context.Background())
	if err != nil {
		return nil
	}
	return st
}

// waitSpoolEmpty waits until the daemon has nothing left to upload. It asks
// over the socket with no epoch: the machine's helpers run the test's own
// build, a newer client that would make the daemon stale.
func (u *upgradeRun) waitSpoolEmpty(timeout time.Duration) {
	u.t.Helper()
	testenv.WaitFor(u.t, timeout, "upload spool to empty", func() bool {
		st := u.daemon()
		return st != nil && st.Queue.Spool == 0 && st.Queue.Queued == 0 && st.Queue.InFlight == 0 && u.m.spool() == 0
	})
}

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
	if len(u.fails) > 0 {
		t.Errorf("%d uploads not queued by a daemon, first: %s", len(u.fails), u.fails[0])
	}
	inBucket(t, u.srv, u.uploaded)
	oneDaemon(t, u.m.sock, next.Pid)
}

// oneDaemon fails unless exactly the daemon pid serves the socket.
func oneDaemon(t *testing.T, sock string, pid int) {
	t.Helper()
	procs, err := procid.FindDaemons(sock)
	if err != nil || len(procs) != 1 || procs[0].Pid != pid {
		t.Fatalf("daemons of the socket: %+v (%v), want only pid %d", procs, err, pid)
	}
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

// count is how many uploads the clients have run.
func (u *upgradeRun) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.uploaded)
}

// loadUploads starts n clients that only upload.
func (u *upgradeRun) loadUploads(n int) {
	dir := u.t.TempDir()
	for c := range n {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-u.stop:
					return
				default:
				}
				u.upload(dir, fmt.Sprintf("u%02d-%04d", c, i))
			}
		}()
	}
}

// otherBuild copies kache-daemon from src to dst as another build: its Go
// build ID (every copy of it in the file) changed in one character, mtime
// set to mtime. Go does not check its own build ID, so it runs the same.
func otherBuild(t *testing.T, src, dst string, mtime time.Time) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	id, err := buildid.Read(src)
	if err != nil {
		t.Fatal(err)
	}
	other := []byte(id)
	other[len(other)-1] ^= 1
	data = bytes.ReplaceAll(data, []byte(id), other)
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return string(other)
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

// logText is the daemon log of the rig.
func (r *rig) logText() string {
	b, _ := os.ReadFile(r.p.LogFile())
	return string(b)
}

// sample is one remote check as a client saw it.
type sample struct {
	start time.Time
	took  time.Duration
	hit   bool
}

// window sums up the checks that ended after from and started before to:
// misses, and the longest wait.
func (u *upgradeRun) window(from, to time.Time) (n, misses int, longest time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.checks {
		if s.start.Add(s.took).Before(from) || s.start.After(to) {
			continue
		}
		n++
		if !s.hit {
			misses++
		}
		longest = max(longest, s.took)
	}
	return n, misses, longest
}

// TestHandoverFigures measures an upgrade under the load of
// TestHandoverE2EUnderLoad, with the hand-over and with the old path
// (KACHE_NO_HANDOVER=1: drain, exit, the next upload starts the new
// binary), and prints the figures scripts/bench-handover.sh collects. It
// runs only with KACHE_BENCH_HANDOVER=1: it is a measurement, not a test.
func TestHandoverFigures(t *testing.T) {
	if os.Getenv("KACHE_BENCH_HANDOVER") != "1" {
		t.Skip("set KACHE_BENCH_HANDOVER=1 (scripts/bench-handover.sh) to measure")
	}
	for _, c := range []struct{ name, env string }{{"handover", ""}, {"old-restart", "KACHE_NO_HANDOVER=1"}} {
		t.Run(c.name, func(t *testing.T) {
			var env []string
			if c.env != "" {
				env = append(env, c.env)
			}
			u := newUpgradeRun(t, env...)
			old := u.daemon()
			u.load()
			testenv.WaitFor(t, 20*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
			before := time.Now()
			replaced := u.replace()
			newEpoch := install.Epoch(u.bin)
			testenv.WaitFor(t, 60*time.Second, "a daemon of the new build serving", func() bool {
				st := u.daemon()
				return st != nil && st.Pid != old.Pid && st.Epoch == newEpoch
			})
			serving := time.Since(replaced)
			testenv.WaitFor(t, 60*time.Second, "the old daemon to exit", func() bool { return !pidAlive(old.Pid) })
			gone := time.Now()
			// The load after the upgrade is part of the window measured.
			testenv.WaitFor(t, 60*time.Second, "checks after the old daemon's exit", func() bool {
				n, _, _ := u.window(gone, time.Now())
				return n >= 2*loadClients
			})
			u.finish()
			_, baseMiss, baseLongest := u.window(time.Time{}, before)
			n, misses, longest := u.window(replaced, time.Now())
			fmt.Printf("BENCH handover mode=%s clients=%d checks_in_window=%d misses=%d longest_wait_ms=%d baseline_longest_ms=%d baseline_misses=%d replace_to_serving_ms=%d old_gone_ms=%d\n",
				c.name, loadClients, n, misses, longest.Milliseconds(), baseLongest.Milliseconds(), baseMiss,
				serving.Milliseconds(), gone.Sub(replaced).Milliseconds())
		})
	}
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
