package cli_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestChaosHandoverLifecycle (scenario i, issue 16's proof): each round,
// with clients uploading to a slow remote, a hand-over is started (both
// binaries touched, the installation replaced file by file with a gap,
// or config.toml changed validly), and at a random moment of it (0 to
// 1.5 s) `kache daemon stop`, `daemon start` or `flush` runs. Once the
// round has settled (predecessors drained and gone) exactly one daemon
// process serves the socket: it answers status there, holds the run lock
// and runs the installation and configuration on disk; a `start` right
// after a stop succeeds within 5 s; and in the end nothing handed over
// is lost.
func TestChaosHandoverLifecycle(t *testing.T) {
	fig := newFigures(t, "stop, start and flush at random moments of a hand-over (binaries touched, replaced file by file, config changed) with a slow remote")
	u := newUpgradeRunDelay(t, 500*time.Millisecond)
	st := u.daemon()
	if st == nil {
		t.Fatal("no daemon answers after the setup")
	}
	l := &lifecycleRun{t: t, u: u, fig: fig, es: entries{}, idle: st.IdleTimeoutS, dir: t.TempDir()}
	rng := seeded(16)
	for round := range pick(9, 40) {
		l.round(round, rng)
	}
	u.waitSpoolEmpty(120 * time.Second)
	fig.Lost += lostOf(t, u.m, u.srv, l.es, nil)
	if f := u.m.failed(); len(f) > 0 {
		t.Errorf("%d intents in failed/ (first %s)", len(f), f[0])
	}
	fig.Entries = len(l.es)
	t.Logf("longest start after a stop %s, longest settle %s", l.startAfter.Round(time.Millisecond), l.settleMost.Round(time.Millisecond))
	u.ok("daemon", "stop")
	noDaemonLeft(t, u, 30*time.Second)
}

// lifecycleRun is the scenario's state across rounds: what was uploaded,
// and the configuration the daemon must end up running.
type lifecycleRun struct {
	t     *testing.T
	u     *upgradeRun
	fig   *figures
	dir   string
	idle  int64 // daemon_idle_timeout_secs in config.toml now
	order []int // the first rounds' pairs of trigger and command
	// startAfter and settleMost are the longest start after a stop and
	// the longest wait for a round to settle.
	startAfter, settleMost time.Duration

	mu sync.Mutex
	es entries
}

// A trigger starts a hand-over; gap is the installer's pause between two
// files.
type trigger struct {
	name string
	do   func(l *lifecycleRun, round int, gap time.Duration) error
}

var lifecycleTriggers = []trigger{
	{"touch", func(l *lifecycleRun, _ int, _ time.Duration) error { return l.touch() }},
	{"file by file", func(l *lifecycleRun, _ int, gap time.Duration) error { return l.fileByFile(gap) }},
	{"config", func(l *lifecycleRun, round int, _ time.Duration) error { return l.newConfig(round) }},
}

var lifecycleActions = [][]string{
	{"daemon", "stop"},
	{"daemon", "start"},
	{"flush", "--timeout", "60s"},
}

// round runs one hand-over with one lifecycle command in it, then settles.
func (l *lifecycleRun) round(n int, rng *rand.Rand) {
	t := l.t
	tr, action := l.pickRound(n, rng)
	at := jitter(rng, 0, 1500*time.Millisecond)
	gap := jitter(rng, 50*time.Millisecond, 500*time.Millisecond)
	c := l.uploaders(n, 3)
	var before int
	testenv.WaitFor(t, 30*time.Second, "uploads in flight", func() bool {
		st := l.u.daemon()
		if st != nil {
			before = st.Pid
		}
		return st != nil && st.Queue.InFlight > 0
	})
	start := time.Now()
	triggered := make(chan error, 1)
	go func() { triggered <- tr.do(l, n, gap) }()
	time.Sleep(time.Until(start.Add(at))) // the moment within the hand-over is the round's input, not a wait
	r, err := l.u.m.client(l.u.bin, 90*time.Second, action...)
	l.fig.waited(r.took)
	if terr := <-triggered; terr != nil {
		t.Fatalf("round %d: %s: %v", n, tr.name, terr)
	}
	c.finish()
	most, mostSeen := c.most, c.mostSeen
	l.fig.fault()
	l.fig.fault()
	if err != nil || r.code != 0 {
		t.Errorf("round %d (%s, %s at %s): %v\n%s", n, tr.name, strings.Join(action, " "), at.Round(time.Millisecond), err, r)
	}
	if action[1] == "stop" {
		l.startAfterStop(n)
	}
	if most > 2 {
		t.Logf("round %d: %d daemon processes at once: %s", n, most, mostSeen)
	}
	took := l.settle(n, tr.name, action)
	l.settleMost = max(l.settleMost, took)
	t.Logf("round %d: daemon %d, %s, %s at %s (exit %d after %s); %d uploads by then; at most %d daemon processes seen; settled in %s",
		n, before, tr.name, strings.Join(action, " "), at.Round(time.Millisecond), r.code, r.took.Round(time.Millisecond), l.count(), most, took.Round(time.Millisecond))
	l.fig.Rounds++
}

// pickRound chooses the round's trigger and command: every pair once in
// the first nine rounds (in an order of the seed), then at random.
func (l *lifecycleRun) pickRound(n int, rng *rand.Rand) (trigger, []string) {
	pairs := len(lifecycleTriggers) * len(lifecycleActions)
	if l.order == nil {
		l.order = rng.Perm(pairs)
	}
	i := rng.IntN(pairs)
	if n < pairs {
		i = l.order[n]
	}
	return lifecycleTriggers[i%len(lifecycleTriggers)], lifecycleActions[i/len(lifecycleTriggers)]
}

// startAfterStop runs `kache daemon start` right after a stop: it must
// succeed at once, whatever the hand-over left draining.
func (l *lifecycleRun) startAfterStop(n int) {
	r, err := l.u.m.client(l.u.bin, 30*time.Second, "daemon", "start")
	l.fig.waited(r.took)
	l.startAfter = max(l.startAfter, r.took)
	if err != nil || r.code != 0 || r.took > 5*time.Second {
		l.t.Errorf("round %d: start after the stop: %v (want exit 0 within 5s)\n%s", n, err, r)
	}
}

// settle waits for the round's hand-over to end: one daemon process of
// the socket, answering there, holding the run lock, running and on the
// installation and configuration now on disk. It fails the test, saying
// what it last saw, if that does not come within the hand-over's bounds:
// a successor ready within 10 s, a predecessor drained within the drain
// cap (20 s here), and 10 s for a loaded machine. A process that is not on
// its way out (a second daemon, or one waiting to take over from the
// running one) outlasts them.
func (l *lifecycleRun) settle(n int, trig string, action []string) time.Duration {
	l.t.Helper()
	start := time.Now()
	epoch := install.Epoch(l.u.bin)
	seen := ""
	const bound = 40 * time.Second
	deadline := start.Add(bound)
	for {
		ok, what := l.settled(epoch)
		if ok {
			return time.Since(start)
		}
		if what != seen {
			l.t.Logf("round %d settling: %s", n, what)
			seen = what
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("round %d (%s, %s): not one reachable daemon on the installation after %s: %s", n, trig, strings.Join(action, " "), bound, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled reports whether exactly one daemon serves the socket as it
// should, and describes what it sees.
func (l *lifecycleRun) settled(epoch int64) (bool, string) {
	procs, err := procid.FindDaemons(l.u.m.sock)
	held := runlock.LockHeld(l.u.m.paths().RunLock())
	pids := describeProcs(procs)
	st := l.u.daemon()
	if st == nil {
		return false, fmt.Sprintf("daemon processes %v (%v), lock held %v, none answers on the socket", pids, err, held)
	}
	what := fmt.Sprintf("daemon processes %v (%v), lock held %v; pid %d answers, state %s, epoch %d (want %d), idle timeout %d (want %d)",
		pids, err, held, st.Pid, st.State, st.Epoch, epoch, st.IdleTimeoutS, l.idle)
	ok := err == nil && len(procs) == 1 && procs[0].Pid == st.Pid && held &&
		st.State == "running" && st.Epoch == epoch && st.IdleTimeoutS == l.idle
	return ok, what
}

// describeProcs names daemon processes: pid and command line.
func describeProcs(procs []procid.ProcInfo) string {
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "[%d %s] ", p.Pid, strings.Join(p.Args, " "))
	}
	return strings.TrimSpace(b.String())
}

// touch gives both binaries a new mtime: a new epoch, the same build.
func (l *lifecycleRun) touch() error {
	now := time.Now()
	for _, name := range []string{"kache", "kache-daemon"} {
		if err := os.Chtimes(filepath.Join(filepath.Dir(l.u.bin), name), now, now); err != nil {
			return err
		}
	}
	return nil
}

// fileByFile installs kache, then after gap kache-daemon, each copied
// beside its place and renamed over it with the time of its copy as
// mtime, as an installer copying one file at a time does. The copies are
// written by cp, not this process (see upgradeRun.replace).
func (l *lifecycleRun) fileByFile(gap time.Duration) error {
	dir := filepath.Dir(l.u.bin)
	for i, name := range []string{"kache", "kache-daemon"} {
		if i > 0 {
			time.Sleep(gap) // the installer's pause: the round's input
		}
		tmp := filepath.Join(dir, "."+name+".new")
		if out, err := exec.Command("cp", filepath.Join(filepath.Dir(kacheBin), name), tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("cp: %v: %s", err, out)
		}
		now := time.Now()
		if err := os.Chtimes(tmp, now, now); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// newConfig changes config.toml validly (another idle timeout), by a
// rename as editors do.
func (l *lifecycleRun) newConfig(round int) error {
	idle := int64(3600 + round)
	path := l.u.m.env["KACHE_CONFIG"]
	body := fmt.Sprintf("drain_timeout_secs = 20\ndaemon_idle_timeout_secs = %d\n", idle)
	if err := os.WriteFile(path+".new", []byte(body), 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".new", path); err != nil {
		return err
	}
	l.idle = idle
	return nil
}

func (l *lifecycleRun) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.es)
}

// uploadPace is the least time between two uploads of one client: a
// build hands over a few entries a second, and the slow remote takes
// about 16 a second, so the spool stays short enough to settle.
const uploadPace = 200 * time.Millisecond

// roundClients are a round's uploading clients and a sampler of the
// daemon processes.
type roundClients struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	most     int    // the most daemon processes of the socket seen at once
	mostSeen string // and which they were
}

// uploaders starts n clients uploading fresh entries through the
// installed kache until finish, each must exit 0 (the intent handed over
// whatever the daemon is doing), and a sampler of the daemon processes.
func (l *lifecycleRun) uploaders(round, n int) *roundClients {
	c := &roundClients{stop: make(chan struct{})}
	for i := range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			pace := time.NewTicker(uploadPace)
			defer pace.Stop()
			for j := 0; c.running(); j++ {
				l.upload(fmt.Sprintf("r%02d-c%d-%04d", round, i, j))
				select {
				case <-pace.C:
				case <-c.stop:
				}
			}
		}()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for c.running() {
			if procs, err := procid.FindDaemons(l.u.m.sock); err == nil && len(procs) > c.most {
				c.most, c.mostSeen = len(procs), describeProcs(procs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return c
}

func (c *roundClients) running() bool {
	select {
	case <-c.stop:
		return false
	default:
		return true
	}
}

func (c *roundClients) finish() {
	close(c.stop)
	c.wg.Wait()
}

// upload hands one fresh entry over.
func (l *lifecycleRun) upload(key string) {
	path := filepath.Join(l.dir, key)
	if err := os.WriteFile(path, []byte("entry "+key+" "+strings.Repeat("y", 512)), 0o600); err != nil {
		l.t.Errorf("write %s: %v", key, err)
		return
	}
	r, err := l.u.m.client(l.u.bin, cmdTimeout, "upload", "--key", key, path)
	l.fig.waited(r.took)
	l.mu.Lock()
	l.es[key] = path
	l.mu.Unlock()
	if err != nil || r.code != 0 {
		l.t.Errorf("upload %s: %v\n%s", key, err, r)
	}
}
