package cli_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosLifecycleStorm (scenario e): workers run `daemon start`,
// `daemon restart` and `daemon stop` in random order for a while, with two
// clients uploading all along. A sampler watches throughout: never two
// processes holding the run lock, never a socket answered by a daemon
// other than the lock's holder (a stolen socket), never more daemon
// processes than a draining one and its successor. At the end one
// `daemon stop` leaves no daemon process at all (no orphan), and every
// entry handed over is on the remote.
func TestChaosLifecycleStorm(t *testing.T) {
	fig := newFigures(t, "concurrent daemon start, restart, stop in random order")
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	workers, span := pick(10, 100), pick(5*time.Second, time.Minute)
	es := randomFiles(t, t.TempDir(), "storm", pick(100, 1000))
	stop := make(chan struct{})
	sampled := startSampler(t, m, stop)
	var wg sync.WaitGroup
	codes, reasons := newTally(), newTally()
	deadline := time.Now().Add(span)
	for w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); stormWorker(t, m, fig, uint64(w), deadline, codes, reasons) }()
	}
	for _, half := range split(es, (len(es)+1)/2) {
		wg.Add(1)
		go func() { defer wg.Done(); trickle(t, m, fig, half, deadline) }()
	}
	wg.Wait()
	close(stop)
	t.Logf("exit codes: %s; %d samples", codes, <-sampled)
	t.Logf("why commands failed: %s", reasons)
	m.ok("daemon", "start")
	fig.Lost += account(t, m, srv, es, nil, 90*time.Second)
	fig.Entries, fig.Rounds = len(es), 1
	m.ok("daemon", "stop")
	testenv.WaitFor(t, 15*time.Second, "no daemon process left (orphans)", func() bool {
		procs, err := procid.FindDaemons(m.sock)
		return err == nil && len(procs) == 0
	})
}

// stormWorker runs random lifecycle verbs until the deadline. Its exit
// codes are tallied, not asserted (a stop racing a start may find nothing
// to stop); what is asserted is that each returns in time, and never the
// misjudgement of a racing start as "not a kache daemon".
func stormWorker(t *testing.T, m *machine, fig *figures, seed uint64, deadline time.Time, codes, reasons *tally) {
	rng := seeded(100 + seed)
	verbs := []string{"start", "restart", "stop"}
	for time.Now().Before(deadline) {
		verb := verbs[rng.IntN(len(verbs))]
		r, err := m.client(kacheBin, cmdTimeout, "daemon", verb)
		fig.waited(r.took)
		fig.fault()
		codes.add(fmt.Sprintf("%s=%d", verb, r.code))
		if r.code != 0 {
			reasons.add(verb + ": " + reasonOf(r))
		}
		if err != nil {
			t.Errorf("daemon %s: %v\n%s", verb, err, r)
		}
		if strings.Contains(r.out+r.err, "not a kache daemon") {
			t.Errorf("daemon %s took a racing kache daemon for a stranger:\n%s", verb, r)
		}
	}
}

// trickle uploads es ten at a time, spread over the storm, whatever the
// daemon is doing; the clients must exit 0 throughout.
func trickle(t *testing.T, m *machine, fig *figures, es entries, deadline time.Time) {
	batches := split(es, 10)
	gap := time.Until(deadline) / time.Duration(len(batches)+1)
	for _, b := range batches {
		uploadBatch(t, m, fig, b)
		if time.Now().Before(deadline) {
			time.Sleep(gap)
		}
	}
}

// startSampler checks the storm's invariants every few milliseconds until
// stop closes, then sends the number of samples taken.
func startSampler(t *testing.T, m *machine, stop chan struct{}) chan int {
	out := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				out <- n
				return
			case <-time.After(10 * time.Millisecond):
			}
			sampleStorm(t, m)
			n++
		}
	}()
	return out
}

// sampleStorm checks the invariants once.
func sampleStorm(t *testing.T, m *machine) {
	before := lockHolders(t, m.paths().RunLock())
	if len(before) > 1 {
		t.Errorf("two processes hold the run lock: %v", before)
	}
	c := &rpc.Client{Socket: m.sock, CallTimeout: time.Second}
	st, err := c.Status(context.Background())
	c.Close()
	after := lockHolders(t, m.paths().RunLock())
	if err == nil && len(before) == 1 && len(after) == 1 && before[0] == after[0] && st.Pid != before[0] {
		t.Errorf("stolen socket: daemon %d answers, %d holds the run lock", st.Pid, before[0])
	}
	if procs, err := procid.FindDaemons(m.sock); err == nil && len(procs) > 2 {
		t.Errorf("%d daemon processes at once (at most a draining one and its successor): %v", len(procs), procs)
	}
}

// lockHolders lists the pids holding a flock on path, from /proc/locks.
func lockHolders(t *testing.T, path string) []int {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return nil
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skipf("no /proc/locks: %v", err)
	}
	var pids []int
	suffix := fmt.Sprintf(":%d", st.Ino)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && strings.HasSuffix(f[5], suffix) {
			var pid int
			fmt.Sscan(f[4], &pid)
			if !slices.Contains(pids, pid) { // one process may show twice (an inherited lock)
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// tally counts outcomes from several goroutines.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func newTally() *tally { return &tally{n: map[string]int{}} }

// add counts k and returns its count so far.
func (c *tally) add(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[k]++
	return c.n[k]
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c.n)) {
		fmt.Fprintf(&b, "\n  %5d  %s", c.n[k], k)
	}
	return b.String()
}

var (
	numbersRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ms|s)?`)
	pathsRE   = regexp.MustCompile(`/[^ :]+`)
)

// reasonOf is the first line of a failed command's error, with paths and
// numbers blanked so that failures of one kind count together.
func reasonOf(r result) string {
	line, _, _ := strings.Cut(strings.TrimSpace(r.err), "\n")
	if line == "" {
		line, _, _ = strings.Cut(strings.TrimSpace(r.out), "\n")
	}
	return numbersRE.ReplaceAllString(pathsRE.ReplaceAllString(line, "P"), "N")
}
