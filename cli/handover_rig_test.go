package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildid"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// The harness of the hand-over tests (handover_e2e_test.go) and figures
// (handover_bench_test.go): an installation under load.

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
	misses []miss // remote checks not answered found, with why
	// starved are checks whose 100 ms dial (the compile path's budget)
	// timed out: on a loaded machine a client can be starved that long
	// whatever the daemon does, so they are reported, not failed.
	starved []string
	fails   []string // uploads that did not hand their entry to a daemon
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
	return newUpgradeRunDelay(t, 150*time.Millisecond, extraEnv...)
}

// newUpgradeRunDelay is newUpgradeRun with S3 slowed by delay per write.
func newUpgradeRunDelay(t *testing.T, delay time.Duration, extraEnv ...string) *upgradeRun {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, delay)
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
	u.clients(loadClients, func(c, i int) {
		u.check(u.known[(c+i)%len(u.known)])
		u.upload(dir, fmt.Sprintf("c%02d-%04d", c, i))
	})
}

// clients starts n goroutines that each run step(client, iteration) in a
// loop until stop.
func (u *upgradeRun) clients(n int, step func(c, i int)) {
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
				step(c, i)
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
	switch {
	case r.code == 0:
	case strings.Contains(r.err, "(dial: i/o timeout)"):
		u.starved = append(u.starved, fmt.Sprintf("%s after %s", key, r.took.Round(time.Millisecond)))
	default:
		u.misses = append(u.misses, miss{start: start, took: r.took, msg: fmt.Sprintf("%s after %s: %s", key, r.took.Round(time.Millisecond), strings.TrimSpace(r.err))})
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

// miss is a remote check that did not answer found: when it ran, and why.
type miss struct {
	start time.Time
	took  time.Duration
	msg   string
}

func (m miss) String() string { return m.msg }

// spans reports whether the check was running at t.
func (m miss) spans(t time.Time) bool { return !m.start.After(t) && m.start.Add(m.took).After(t) }

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
	last := "no daemon answered"
	defer func() {
		if u.t.Failed() {
			u.t.Logf("last seen while waiting for the spool: %s", last)
		}
	}()
	testenv.WaitFor(u.t, timeout, "upload spool to empty", func() bool {
		st, onDisk := u.daemon(), u.m.spool()
		if st == nil {
			last = fmt.Sprintf("no daemon answered; %d intents on disk", onDisk)
			return false
		}
		last = fmt.Sprintf("pid %d state %s: spool %d queued %d in flight %d; %d intents on disk", st.Pid, st.State, st.Queue.Spool, st.Queue.Queued, st.Queue.InFlight, onDisk)
		return st.Queue.Spool == 0 && st.Queue.Queued == 0 && st.Queue.InFlight == 0 && onDisk == 0
	})
}

// totalsCountAll checks the counters kept across restarts once the spool
// is empty: every upload of the run (the known entries and the clients')
// was counted by one of the daemons, the old one draining or its
// successor, though both wrote the totals file during the hand-over.
func (u *upgradeRun) totalsCountAll() {
	u.t.Helper()
	c := &rpc.Client{Socket: u.m.sock, CallTimeout: 5 * time.Second}
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil || st.Totals == nil {
		u.t.Fatalf("stats: %+v %v", st, err)
	}
	tc := st.Totals.Counters
	want := int64(len(u.uploaded) + len(u.known))
	if got := tc.UploadsCompleted + tc.UploadsSkipped; got < want {
		u.t.Errorf("totals count %d uploads (%d completed, %d skipped), want at least the %d of this run: a daemon's counts were overwritten",
			got, tc.UploadsCompleted, tc.UploadsSkipped, want)
	}
}

// oneDaemon fails unless exactly the daemon pid serves the socket.
func oneDaemon(t *testing.T, sock string, pid int) {
	t.Helper()
	procs, err := procid.FindDaemons(sock)
	if err != nil || len(procs) != 1 || procs[0].Pid != pid {
		t.Fatalf("daemons of the socket: %+v (%v), want only pid %d", procs, err, pid)
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
	u.clients(n, func(c, i int) { u.upload(dir, fmt.Sprintf("u%02d-%04d", c, i)) })
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
