package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// tmuxPane runs a command in a detached tmux session on its own server,
// so the test reads the screen as a user sees it (capture-pane) and types
// into it (send-keys). tmux is a test dependency (.ci/run installs it).
type tmuxPane struct {
	t      *testing.T
	socket string
	env    []string
}

func newTmux(t *testing.T, m *machine, width, height int, argv ...string) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: apt-get install -y tmux (.ci/run installs it)")
	}
	tp := &tmuxPane{t: t, socket: filepath.Join(filepath.Dir(m.sock), "tmux"), env: append(m.environ(), "TERM=xterm-256color")}
	tp.run("new-session", "-d", "-s", "mon", "-x", itoa(width), "-y", itoa(height), strings.Join(argv, " "))
	t.Cleanup(func() { _ = tp.cmd("kill-server").Run() })
	return tp
}

func (tp *tmuxPane) cmd(args ...string) *exec.Cmd {
	c := exec.Command("tmux", append([]string{"-S", tp.socket}, args...)...)
	c.Env = tp.env
	return c
}

func (tp *tmuxPane) run(args ...string) string {
	tp.t.Helper()
	out, err := tp.cmd(args...).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tp *tmuxPane) screen() string {
	out, _ := tp.cmd("capture-pane", "-p", "-t", "mon").CombinedOutput()
	return string(out)
}

func (tp *tmuxPane) keys(k string) { tp.run("send-keys", "-t", "mon", k) }

// waitScreen waits until every want is on the screen.
func (tp *tmuxPane) waitScreen(what string, wants ...string) {
	tp.t.Helper()
	var last string
	defer func() {
		if tp.t.Failed() {
			tp.t.Logf("last screen:\n%s", last)
		}
	}()
	testenv.WaitFor(tp.t, 20*time.Second, what, func() bool {
		last = tp.screen()
		for _, w := range wants {
			if !strings.Contains(last, w) {
				return false
			}
		}
		return true
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestMonitorInTmux runs `kache monitor` in a real terminal against a live
// daemon, switches tabs with keys, then stops the daemon under it: the
// header turns to `daemon: offline` and the tabs say they read the files.
// The monitor never starts a daemon of its own.
func TestMonitorInTmux(t *testing.T) {
	m := newMachine(t)
	m.ok("daemon", "start")
	pid := m.status().Pid
	tp := newTmux(t, m, 120, 30, kacheBin, "monitor")
	tp.waitScreen("the monitor shows the running daemon", "daemon: pid "+itoa(pid), "state running", "[1 Build]")

	tp.keys("4")
	tp.waitScreen("the Lifecycle tab", "[4 Lifecycle]", "started by `kache daemon start`; running")
	tp.keys("?")
	tp.waitScreen("the key list", "show or hide this list")
	tp.keys("?")

	m.ok("daemon", "stop")
	tp.waitScreen("the monitor sees the daemon gone", "daemon: offline", "last exit: pid "+itoa(pid)+", stop",
		"(daemon offline: read from the files on disk)", "stopped (kache daemon stop)")
	tp.keys("Left")
	tp.waitScreen("the Transfers tab offline", "[3 Transfers]", "(no daemon uploads them now)")

	tp.keys("q")
	testenv.WaitFor(t, 10*time.Second, "the monitor to quit on q", func() bool { return tp.cmd("has-session", "-t", "mon").Run() != nil })
	if m.daemonUp() {
		t.Fatal("the monitor started a daemon")
	}
}

// TestMonitorBuildLiveInTmux: with the monitor on screen, the Build tab
// follows builds.jsonl as wrappers append to it (buildlog.Append, as the
// wrapper writes), across a rotation to builds.jsonl.1, without a daemon.
func TestMonitorBuildLiveInTmux(t *testing.T) {
	m := newMachine(t)
	if err := os.MkdirAll(m.cache, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(m.cache, "builds.jsonl")
	add := func(crate, outcome, reason string) {
		r := buildlog.Record{At: time.Now(), Tool: "rustc", Cargo: 4711, Crate: crate, Outcome: outcome, Reason: reason, Ms: 7, SavedMs: 1500}
		if err := buildlog.Append(log, r); err != nil {
			t.Fatal(err)
		}
	}
	tp := newTmux(t, m, 120, 40, kacheBin, "monitor")
	tp.waitScreen("the monitor's Build tab", "[1 Build]", "cargo build: none recorded yet")
	add("serde", buildlog.LocalHit, "")
	tp.waitScreen("the first call", "cargo build (cargo pid 4711)", "rustc calls: 1: 1 local hits", "serde")
	add("app", buildlog.Miss, "")
	add("", buildlog.Passthrough, "probe (-vV)")
	tp.waitScreen("two more calls", "rustc calls: 3: 1 local hits, 0 remote hits, 1 misses, 1 run unchanged; hit rate 50%",
		"run unchanged 1× probe (-vV)", "compile time saved: 1.5 s")
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	add("late", buildlog.RemoteHit, "")
	tp.waitScreen("a call after the log rotated", "rustc calls: 4: 1 local hits, 1 remote hits", "late")
	tp.keys("q")
	testenv.WaitFor(t, 10*time.Second, "the monitor to quit on q", func() bool { return tp.cmd("has-session", "-t", "mon").Run() != nil })
}

// TestStopProgressInTmux: `kache daemon stop` on a terminal shows one live
// line while the daemon drains: the uploads left, their bytes, and the
// time left of the drain's cap. The remote refuses connections, so the
// drain runs to its 3 s cap.
func TestStopProgressInTmux(t *testing.T) {
	m := newMachine(t)
	m.set("KACHE_S3_BUCKET=b", "KACHE_S3_ENDPOINT=http://127.0.0.1:1", "AWS_ACCESS_KEY_ID=x",
		"AWS_SECRET_ACCESS_KEY=y", "AWS_REGION=us-east-1")
	m.writeConfig("drain_timeout_secs = 3\n")
	src := filepath.Join(t.TempDir(), "f")
	writeFile(t, src, []byte("0123456789"))
	m.ok("upload", "--key", "k1", src)
	tp := newTmux(t, m, 150, 10, "sh", "-c", "'"+kacheBin+" daemon stop; echo exit=$?; cat'")
	tp.waitScreen("the live drain line", "draining: 1 uploads left (1 in flight, 10 B in the spool)", "left of the 3s cap")
	tp.waitScreen("the stop to finish", "kache daemon stopped", "1 left for the next start", "exit=0")
}
