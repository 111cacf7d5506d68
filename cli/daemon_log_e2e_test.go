package cli_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// coreEnv is an isolated environment for the real binary: its own cache
// dir, home, config and a short socket path, with a remote directory.
func coreEnv(t *testing.T) (env []string, p config.Paths) {
	t.Helper()
	work := t.TempDir()
	sockDir, err := os.MkdirTemp("/tmp", "kl")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"HOME": filepath.Join(work, "home"), "XDG_CONFIG_HOME": filepath.Join(work, "config"),
		"XDG_CACHE_HOME": filepath.Join(work, "xdg"), "KACHE_CACHE_DIR": filepath.Join(work, "cache"),
		"KACHE_SOCKET_PATH": filepath.Join(sockDir, "daemon.sock"), "KACHE_REMOTE_DIR": filepath.Join(work, "remote"),
		"KACHE_CONFIG": "", "KACHE_LOG": "", "KACHE_DAEMON_IDLE_TIMEOUT": "", "KACHE_S3_BUCKET": "",
	}
	env = testenv.Environ(vars)
	p, err = config.ResolvePaths(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killLeftovers(sockDir)
		os.RemoveAll(sockDir)
	})
	return env, p
}

// kache runs the binary to completion and fails the test if it fails.
func kache(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kacheBin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kache %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// lines collects what a reader prints, line by line, for waiting on.
type lines struct {
	mu   sync.Mutex
	all  []string
	done chan struct{}
}

func collect(r io.Reader) *lines {
	l := &lines{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
		}
	}()
	return l
}

// find returns the index of the first line at or after from containing s.
func (l *lines) find(from int, s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.all); i++ {
		if strings.Contains(l.all[i], s) {
			return i
		}
	}
	return -1
}

// waitLine waits until a line at or after from contains s, and returns its index.
func (l *lines) waitLine(t *testing.T, from int, s string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if i := l.find(from, s); i >= 0 {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line containing %q after line %d within %s", s, from, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonLogFollows runs `kache daemon log` as a user would: it prints
// the last line, then follows what the running daemon appends, across the
// daemon's own rotation of the log past 2 MiB, until interrupted (exit 0).
func TestDaemonLogFollows(t *testing.T) {
	env, p := coreEnv(t)
	kache(t, env, "daemon", "start")

	follow := exec.Command(kacheBin, "daemon", "log", "-n", "1")
	follow.Env = env
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	got := collect(out)
	t.Cleanup(func() { _ = follow.Process.Kill(); <-got.done; _ = follow.Wait() })

	// The tail first: exactly the last line, the daemon becoming ready.
	first := got.waitLine(t, 0, "from=starting to=running event=ready", 10*time.Second)
	if first != 0 {
		t.Fatalf("tail printed %d lines before the last one, want -n 1", first)
	}

	// About 5 MiB of warnings: the daemon rotates its log while it runs.
	if err := spamLog(filepath.Join(t.TempDir(), "spam"), p.SpoolDir(), p.Socket, 700); err != nil {
		t.Fatal(err)
	}
	rot := got.waitLine(t, 1, strings.TrimSuffix(logtail.RotatedMarker, "\n"), 30*time.Second)
	got.waitLine(t, 1, "key=spam-0000", 30*time.Second)
	last := got.waitLine(t, rot, "key=spam-0699", 30*time.Second)
	if problem := rotationProblem(p.LogFile()); problem != "" {
		t.Fatalf("log not rotated: %s", problem)
	}

	// Lines the daemon writes after the rotations reach the follower too.
	kache(t, env, "daemon", "stop")
	got.waitLine(t, last, `msg="daemon stopped" reason=stop`, 10*time.Second)

	if err := follow.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got.done:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon log did not stop on SIGINT")
	}
	if err := follow.Wait(); err != nil {
		t.Fatalf("daemon log after SIGINT: %v, want exit 0", err)
	}
}
