package spawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestMain runs the tests under goleak, or in a child plays a daemon.
func TestMain(m *testing.M) {
	testenv.RunAct(testenv.Acts{
		"ready": func(string) int { // report ready, then run until killed
			fmt.Fprintln(os.Stderr, "helper: starting")
			if err := NotifyReady(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			time.Sleep(time.Hour)
			return 0
		},
		"silent": func(string) int { time.Sleep(time.Hour); return 0 }, // never ready
		"exit3": func(string) int { // fail at startup as a misconfigured daemon would
			fmt.Fprintln(os.Stderr, "fatal: daemon_idle_timeout_secs: not a number")
			return 3
		},
		"exit0": func(string) int { return 0 },
	})
	goleak.VerifyTestMain(m)
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

func spawnHelper(t *testing.T, act, logPath string) *Child {
	t.Helper()
	c, err := Start(Options{Exe: testenv.Exe(t), Env: testenv.HelperEnv(act, ""), LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSpawnReadyDetachedChild(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "daemon.log")
	c := spawnHelper(t, "ready", logPath)
	defer killChild(t, c)
	if err := c.WaitReady(waitCtx(t, 10*time.Second), nil); err != nil {
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
	lines, _ := logtail.Tail(logPath, 1)
	if len(lines) != 1 || lines[0] != "helper: starting" {
		t.Errorf("log = %q; want the child's stderr line", lines)
	}
	if c.Err() != nil {
		t.Errorf("Err() of a running child = %v, want nil", c.Err())
	}
}

// A descriptor our caller left open without close-on-exec (a shell's
// `exec 7>&1`) must not reach the daemon: it would hold a pipe open for the
// daemon's whole life.
func TestSpawnDoesNotLeakInheritedDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	dir := t.TempDir()
	leak := filepath.Join(dir, "leaked")
	fd, err := syscall.Open(leak, syscall.O_CREAT|syscall.O_WRONLY, 0o600) // no O_CLOEXEC, as inherited
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	c := spawnHelper(t, "ready", filepath.Join(dir, "log"))
	defer killChild(t, c)
	if err := c.WaitReady(waitCtx(t, 10*time.Second), nil); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", c.Process.Pid, e.Name())); target == leak {
			t.Errorf("the daemon inherited fd %s -> %s", e.Name(), target)
		}
	}
}

func TestSpawnChildExitsBeforeReady(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "daemon.log")
	if err := os.WriteFile(logPath, []byte("earlier run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := spawnHelper(t, "exit3", logPath)
	err := c.WaitReady(waitCtx(t, 10*time.Second), func(context.Context) error { return errors.New("connection refused") })
	var ee *exec.ExitError
	if !errors.Is(err, ErrChildExited) || !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("WaitReady = %v; want ErrChildExited with exit status 3", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q does not show the exit status", err)
	}
	lines, err := logtail.Tail(logPath, 5)
	want := []string{"earlier run", "fatal: daemon_idle_timeout_secs: not a number"}
	if err != nil || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("Tail = %q, %v; want %q (appended, not truncated)", lines, err, want)
	}
}

func TestWaitReadyDeadline(t *testing.T) {
	c := spawnHelper(t, "silent", filepath.Join(t.TempDir(), "log"))
	defer killChild(t, c)
	begin := time.Now()
	err := c.WaitReady(waitCtx(t, 300*time.Millisecond), nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not ready before the deadline") {
		t.Fatalf("WaitReady = %v; want a deadline error", err)
	}
	if time.Since(begin) < 300*time.Millisecond {
		t.Errorf("WaitReady returned before its deadline")
	}
}

// A child that stands down (exit 0) because another daemon won the race
// is fine if that daemon is ready.
func TestWaitReadyAnotherDaemonWon(t *testing.T) {
	c := spawnHelper(t, "exit0", filepath.Join(t.TempDir(), "log"))
	asked := false
	err := c.WaitReady(waitCtx(t, 10*time.Second), func(context.Context) error { asked = true; return nil })
	if err != nil || !asked {
		t.Fatalf("WaitReady = %v (winner asked: %v); want nil after asking", err, asked)
	}
	<-c.Done
	if c.Err() != nil {
		t.Errorf("Err() = %v, want nil for exit 0", c.Err())
	}
}

func TestSpawnErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Start(Options{LogPath: filepath.Join(dir, "log")}); err == nil {
		t.Error("Start without Exe succeeded")
	}
	_, err := Start(Options{Exe: filepath.Join(dir, "missing"), LogPath: filepath.Join(dir, "log")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Start of a missing binary = %v; want an error naming it", err)
	}
	_, err = Start(Options{Exe: testenv.Exe(t), LogPath: filepath.Join(dir, "no", "log")})
	if err == nil || !strings.Contains(err.Error(), "daemon log") {
		t.Errorf("Start with an unwritable log = %v; want an error naming the log", err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Options{Exe: testenv.Exe(t), LogPath: filepath.Join(dir, "link.log")})
	if err == nil {
		t.Errorf("Start with a symlinked log succeeded; want it refused")
	}
}

func TestNotifyReadyWithoutPipe(t *testing.T) {
	t.Setenv(ReadyFDEnv, "")
	if err := NotifyReady(); err != nil {
		t.Errorf("NotifyReady without %s = %v, want nil", ReadyFDEnv, err)
	}
	t.Setenv(ReadyFDEnv, "x")
	if err := NotifyReady(); err == nil {
		t.Errorf("NotifyReady with a bad %s = nil, want an error", ReadyFDEnv)
	}
}
