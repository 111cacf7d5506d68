package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a helper process (the os/exec
// pattern): its value names the act, helperPath its argument.
const (
	helperEnv  = "KACHE_SUPERVISOR_HELPER"
	helperPath = "KACHE_SUPERVISOR_HELPER_PATH"
)

// TestMain runs the package's tests under goleak, or, in a child, plays a
// helper: a fake `kache daemon run` when started through a symlink named
// kache, or the act helperEnv names.
func TestMain(m *testing.M) {
	if isFakeDaemon(os.Args) {
		for {
			time.Sleep(time.Hour) // until killed
		}
	}
	if act := os.Getenv(helperEnv); act != "" {
		os.Exit(runHelper(act, os.Getenv(helperPath)))
	}
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 never stops its mill goroutine (see OpenLog).
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// isFakeDaemon spots `…/kache daemon run`, which proc tests start.
func isFakeDaemon(args []string) bool {
	return len(args) >= 3 && filepath.Base(args[0]) == "kache" && args[1] == "daemon" && args[2] == "run"
}

// runHelper performs one helper act and returns the exit code.
func runHelper(act, path string) int {
	switch act {
	case "hold-lock": // take the lock, say so, hold it until stdin closes
		l, err := TryLock(path)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("locked")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = l.Release()
	case "activated": // adopt the inherited listener, report on it
		return reportActivation()
	case "ready": // become ready by creating path, then run until killed
		fmt.Fprintln(os.Stderr, "helper: starting")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			return 1
		}
		time.Sleep(time.Hour)
	case "exit3": // fail at startup as a misconfigured daemon would
		fmt.Fprintln(os.Stderr, "fatal: daemon_idle_timeout_secs: not a number")
		return 3
	case "exit0":
		return 0
	}
	return 0
}

// reportActivation runs in a child given fd 3 and LISTEN_*: it calls
// Listen and answers the first connection with what it saw.
func reportActivation() int {
	ln, activated, err := Listen("/nonexistent/kache-not-used.sock")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return 1
	}
	defer c.Close()
	_, isUnix := ln.(*net.UnixListener)
	fmt.Fprintf(c, "activated=%v unix=%v listen_pid=%q listen_fds=%q\n",
		activated, isUnix, os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"))
	return 0
}

// helperCmd is the test binary re-run as the helper act.
func helperCmd(t *testing.T, act, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testExe(t))
	cmd.Env = helperEnvFor(act, path)
	return cmd
}

// helperEnvFor is our environment plus the helper variables.
func helperEnvFor(act, path string) []string {
	return append(os.Environ(), helperEnv+"="+act, helperPath+"="+path, "GORACE=atexit_sleep_ms=0")
}

// testExe is the running test binary.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// sockDir is a short temp dir: Unix socket paths are capped at 107 bytes
// and t.TempDir() paths can be longer.
func sockDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "k")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// pollUntil waits for cond, failing the test after timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killChild kills a spawned child and waits until it is reaped.
func killChild(t *testing.T, c *Child) {
	t.Helper()
	_ = c.Process.Kill()
	select {
	case <-c.Done:
	case <-time.After(10 * time.Second):
		t.Fatalf("child %d not reaped after kill", c.Process.Pid)
	}
}

func spawnHelper(t *testing.T, act, path, logPath string) *Child {
	t.Helper()
	c, err := Spawn(SpawnOptions{Exe: testExe(t), Env: helperEnvFor(act, path), LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSpawnReadyDetachedChild(t *testing.T) {
	dir := t.TempDir()
	marker, logPath := filepath.Join(dir, "ready"), filepath.Join(dir, "daemon.log")
	c := spawnHelper(t, "ready", marker, logPath)
	defer killChild(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.WaitReady(ctx, func(context.Context) error { _, err := os.Stat(marker); return err })
	if err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	pid := c.Process.Pid
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("getsid(%d) = %d, %v; want its own session", pid, sid, err)
	}
	for fd, want := range map[int]string{0: os.DevNull, 1: os.DevNull, 2: logPath} {
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd)); got != want && runtime.GOOS == "linux" {
			t.Errorf("child fd %d -> %q (%v), want %q", fd, got, err, want)
		}
	}
	pollUntil(t, 5*time.Second, "the child's stderr in the log", func() bool {
		lines, _ := LogTail(logPath, 1)
		return len(lines) == 1 && lines[0] == "helper: starting"
	})
	if c.Err() != nil {
		t.Errorf("Err() of a running child = %v, want nil", c.Err())
	}
}

func TestSpawnChildExitsBeforeReady(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "daemon.log")
	if err := os.WriteFile(logPath, []byte("earlier run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := spawnHelper(t, "exit3", "", logPath)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.WaitReady(ctx, func(context.Context) error { return errors.New("connection refused") })
	var ee *exec.ExitError
	if !errors.Is(err, ErrChildExited) || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("WaitReady = %v; want ErrChildExited with exit status 3", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not show the exit status", err)
	}
	lines, err := LogTail(logPath, 5)
	want := []string{"earlier run", "fatal: daemon_idle_timeout_secs: not a number"}
	if err != nil || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("LogTail = %q, %v; want %q (appended, not truncated)", lines, err, want)
	}
}

func TestWaitReadyDeadline(t *testing.T) {
	dir := t.TempDir()
	c := spawnHelper(t, "ready", filepath.Join(dir, "ready"), filepath.Join(dir, "log"))
	defer killChild(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var calls []time.Time
	err := c.WaitReady(ctx, func(context.Context) error { calls = append(calls, time.Now()); return errors.New("no answer") })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not ready before the deadline") || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("WaitReady = %v; want a deadline error with the last check", err)
	}
	// Timers never fire early, so each gap is at least the step: 1 ms for
	// the first 100 ms, then doubling, capped at 100 ms. Load only makes
	// gaps longer, and fewer calls.
	step := readyPoll
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < step {
			t.Errorf("gap %d was %s, want at least %s", i, gap, step)
		}
		if calls[i].Sub(calls[0]) > readyFastFor {
			step = min(step*2, readyPollMax)
		}
	}
	// At most 100 fast polls, then 2, 4, ... 100 ms steps: about 108.
	if len(calls) < 2 || len(calls) > 115 {
		t.Errorf("ready called %d times in 400 ms; want a fast poll then a backoff (at most about 108)", len(calls))
	}
}

// A child that stands down (exit 0) because another daemon won the race
// is fine if that daemon is ready.
func TestWaitReadyAnotherDaemonWon(t *testing.T) {
	dir := t.TempDir()
	c := spawnHelper(t, "exit0", "", filepath.Join(dir, "log"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.WaitReady(ctx, func(context.Context) error {
		select {
		case <-c.Done: // stands for "the winner now answers"
			return nil
		default:
			return errors.New("not yet")
		}
	})
	if err != nil {
		t.Fatalf("WaitReady = %v; want nil", err)
	}
	<-c.Done
	if c.Err() != nil {
		t.Errorf("Err() = %v, want nil for exit 0", c.Err())
	}
}

func TestSpawnErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Spawn(SpawnOptions{LogPath: filepath.Join(dir, "log")}); err == nil {
		t.Error("Spawn without Exe succeeded")
	}
	_, err := Spawn(SpawnOptions{Exe: filepath.Join(dir, "missing"), LogPath: filepath.Join(dir, "log")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Spawn of a missing binary = %v; want an error naming it", err)
	}
	_, err = Spawn(SpawnOptions{Exe: testExe(t), LogPath: filepath.Join(dir, "no", "log")})
	if err == nil || !strings.Contains(err.Error(), "daemon log") {
		t.Errorf("Spawn with an unwritable log = %v; want an error naming the log", err)
	}
}
