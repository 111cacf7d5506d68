package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// The chaos rounds (issue 8, "faults with figures"): each scenario is a
// real-process test with a fixed seed and a bounded run time, and above
// all one assertion: every entry handed over is on the remote with the
// right bytes, or still in the spool (lost = 0). `go test` runs a short
// round of each; KACHE_CHAOS=long (make chaos) runs the long rounds, and
// KACHE_CHAOS_REPORT=FILE appends each scenario's figures to FILE as a
// JSON line, which scripts/chaos.sh turns into docs/reliability.md.

// chaosLong reports whether the long rounds were asked for.
func chaosLong() bool { return os.Getenv("KACHE_CHAOS") == "long" }

// pick is short in a normal run, long under make chaos.
func pick[T any](short, long T) T {
	if chaosLong() {
		return long
	}
	return short
}

// figures are one scenario's results, as the reliability table shows them.
type figures struct {
	Scenario string        `json:"scenario"`
	Test     string        `json:"test"`
	Rounds   int           `json:"rounds"`
	Entries  int           `json:"entries"`
	Lost     int           `json:"lost"`
	Wait     time.Duration `json:"longest_client_wait_ns"`
	Faults   int           `json:"faults"`
	Failed   bool          `json:"failed"` // an assertion failed: the figures are of a broken run
	mu       sync.Mutex
}

// newFigures starts the figures of a scenario, reported when the test ends
// (also when it fails: a failed round's figures matter most).
func newFigures(t *testing.T, scenario string) *figures {
	if testing.Short() {
		t.Skip("a chaos round: not part of -short")
	}
	f := &figures{Scenario: scenario, Test: t.Name()}
	t.Cleanup(func() { f.report(t) })
	return f
}

// waited records one client's wait.
func (f *figures) waited(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Wait = max(f.Wait, d)
}

func (f *figures) fault() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Faults++
}

func (f *figures) report(t *testing.T) {
	t.Logf("chaos %s: %d rounds, %d entries, %d lost, %d faults, longest client wait %s",
		f.Scenario, f.Rounds, f.Entries, f.Lost, f.Faults, f.Wait.Round(time.Millisecond))
	f.Failed = t.Failed()
	path := os.Getenv("KACHE_CHAOS_REPORT")
	if path == "" {
		return
	}
	line, _ := json.Marshal(f)
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Errorf("chaos report: %v", err)
		return
	}
	defer fh.Close()
	fh.Write(append(line, '\n'))
}

// mixedEntries writes n entries under dir, one in ten a directory tree,
// the rest random files; keys are prefix-NNN.
func mixedEntries(t *testing.T, dir, prefix string, n int, seed uint64) (entries, map[string]bool) {
	t.Helper()
	es := randomFiles(t, dir, prefix, n)
	dirs := map[string]bool{}
	for i := 0; i < n; i += 10 {
		key := fmt.Sprintf("%s-%03d", prefix, i)
		os.Remove(es[key])
		es[key] = makeTree(t, filepath.Join(dir, key+".d"), seed+uint64(i))
		dirs[key] = true
	}
	return es, dirs
}

// split cuts es into batches of at most size entries.
func split(es entries, size int) []entries {
	var out []entries
	cur := entries{}
	for k, p := range es {
		cur[k] = p
		if len(cur) == size {
			out, cur = append(out, cur), entries{}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// client runs one kache command bounded by timeout; exec failures are
// returned (a client that could not start handed nothing over).
func (m *machine) client(bin string, timeout time.Duration, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = m.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, out: stdout.String(), err: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code, err = exit.ExitCode(), nil
		if ctx.Err() != nil {
			err = fmt.Errorf("kache %v did not return within %s", args, timeout)
		}
	}
	return r, err
}

// killDaemons SIGKILLs every daemon serving the machine's socket and
// returns how many it found.
func (m *machine) killDaemons() int {
	procs, _ := procid.FindDaemons(m.sock)
	for _, p := range procs {
		_ = syscallKill(p.Pid)
	}
	return len(procs)
}

// account settles a round: with a daemon running, it waits for the spool
// to empty, then counts the entries that are neither on the remote with
// their bytes nor in the spool. Directory entries are read back through
// `kache check` into an emptied store and compared tree to tree.
func account(t *testing.T, m *machine, srv *s3test.Server, es entries, dirs map[string]bool, settle time.Duration) int {
	t.Helper()
	m.waitSpoolEmpty(settle)
	lost := lostOf(t, m, srv, es, dirs)
	if f := m.failed(); len(f) > 0 {
		t.Errorf("%d intents in failed/ (first %s)", len(f), f[0])
	}
	return lost
}

// lostOf counts the entries of es neither in the spool nor on the remote
// with their bytes.
func lostOf(t *testing.T, m *machine, srv *s3test.Server, es entries, dirs map[string]bool) int {
	t.Helper()
	os.RemoveAll(m.paths().StoreDir())
	lost := 0
	for key, src := range es {
		if _, err := os.Stat(filepath.Join(m.paths().SpoolDir(), key+".json")); err == nil {
			continue
		}
		if !onRemote(t, m, srv, key, src, dirs[key]) {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("lost %d of %d entries handed over\n%s", lost, len(es), m.logTail())
	}
	return lost
}

// onRemote reports whether key is complete on the remote with the bytes
// of src, logging why not.
func onRemote(t *testing.T, m *machine, srv *s3test.Server, key, src string, dir bool) bool {
	t.Helper()
	obj := srv.ObjectPath(uploader.V2Dir + "/" + key) // remote format v2: one object per entry
	if _, err := os.Stat(obj); err != nil {
		t.Logf("lost %s: no object on the remote", key)
		return false
	}
	if !dir {
		got, err1 := os.ReadFile(obj)
		want, err2 := os.ReadFile(src)
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Logf("lost %s: the object differs from its source (%v, %v)", key, err1, err2)
			return false
		}
		return true
	}
	if r := m.run("check", key); r.code != 0 {
		t.Logf("lost %s: check of the directory entry failed:\n%s", key, r)
		return false
	}
	return len(treeDiff(t, filepath.Join(m.paths().StoreDir(), key), src)) == 0
}

// treeDiff lists the paths whose kind, mode or content differ.
func treeDiff(t *testing.T, got, want string) []string {
	g, w := treeOf(t, got), treeOf(t, want)
	var diff []string
	for rel, desc := range w {
		if g[rel] != desc {
			diff = append(diff, rel)
		}
	}
	if len(g) != len(w) {
		diff = append(diff, fmt.Sprintf("%d paths, want %d", len(g), len(w)))
	}
	return diff
}

// seeded is the scenario's random source: a fixed seed, so a failing
// round replays the same schedule.
func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6b616368)) }

// jitter is a duration in [lo, hi).
func jitter(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
