package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// clientDeadline is how long a client may take against a wedged daemon
// before the scenario fails: generous for a loaded 2-core machine; the
// longest wait measured is what the table reports.
const clientDeadline = 45 * time.Second

// TestChaosWedgedDaemon (scenario h): the daemon is stopped with SIGSTOP
// (it holds its lock and the kernel queues connections for it, but it
// never answers) while clients keep uploading. Every client must return
// within its deadline with exit 0, the intents kept; `daemon restart`
// must replace the wedged daemon, and the new one upload everything.
func TestChaosWedgedDaemon(t *testing.T) {
	t.Parallel() // mostly waiting (a breaker cooldown, client timeouts)
	fig := newFigures(t, "daemon wedged (SIGSTOP) while clients upload")
	srv := s3test.Start(t)
	rounds, clients := pick(1, 5), pick(12, 200)
	for round := range rounds {
		m := s3Machine(t, srv)
		es := randomFiles(t, t.TempDir(), "wedge"+string(rune('a'+round)), clients*5)
		m.ok("daemon", "start")
		pid := m.status().Pid
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		fig.fault()
		uploadAll(t, m, fig, split(es, 5))
		r := m.run("daemon", "restart")
		fig.waited(r.took)
		if r.code != 0 {
			t.Fatalf("restart of the wedged daemon %d failed; the run lock is held by %s:\n%s", pid, describeHolders(t, m), r)
		}
		if st := m.status(); st.Pid == pid {
			t.Fatalf("restart left the wedged daemon %d in place:\n%s", pid, r)
		}
		fig.Lost += account(t, m, srv, es, nil, 90*time.Second)
		fig.Entries += len(es)
		fig.Rounds++
		m.ok("daemon", "stop")
	}
}

// uploadAll runs one client per batch, all at once, each bounded by
// clientDeadline, and fails the test for any that exits non-zero.
func uploadAll(t *testing.T, m *machine, fig *figures, batches []entries) {
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.client(kacheBin, clientDeadline, "upload", "--from", batchFileIn(t, b))
			fig.waited(r.took)
			if err != nil || r.code != 0 {
				t.Errorf("upload against a wedged daemon: %v\n%s", err, r)
			}
		}()
	}
	wg.Wait()
}

// describeHolders says which processes hold the run lock: pid, state
// (T is stopped) and command line, for a failure message.
func describeHolders(t *testing.T, m *machine) string {
	var b strings.Builder
	for _, pid := range lockHolders(t, m.paths().RunLock()) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fields := strings.Fields(string(stat))
		state := "?"
		if len(fields) > 2 {
			state = fields[2]
		}
		fmt.Fprintf(&b, "[pid %d state %s cmd %q threads %s] ", pid, state, strings.ReplaceAll(string(cmd), "\x00", " "), threadStates(pid))
	}
	return b.String()
}

// threadStates lists the state of each thread of pid: a leader that is a
// zombie while other threads still run holds the process's files.
func threadStates(pid int) string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	var states []string
	for _, task := range tasks {
		stat, _ := os.ReadFile(task)
		if f := strings.Fields(string(stat)); len(f) > 2 {
			states = append(states, f[0]+":"+f[2])
		}
	}
	return strings.Join(states, ",")
}
