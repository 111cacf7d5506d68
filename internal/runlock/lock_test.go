package runlock

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

func TestTryLockConflictsWithinProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.run.lock")
	if LockHeld(path) {
		t.Fatal("LockHeld on a missing file = true")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("LockHeld created the lock file")
	}
	l1, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock = %v; want ErrLocked", err)
	}
	if !LockHeld(path) {
		t.Error("LockHeld = false while held")
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	if LockHeld(path) {
		t.Error("LockHeld = true after Release")
	}
	l2, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	if err := l2.Release(); err != nil || l2.Release() != nil {
		t.Errorf("Release twice: want nil both times")
	}
}

func TestTryLockErrorNamesPath(t *testing.T) {
	_, err := TryLock(filepath.Join(t.TempDir(), "no", "such", "dir", "x.lock"))
	if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "x.lock") {
		t.Fatalf("TryLock in a missing dir = %v; want an error naming the file", err)
	}
}

// lockHolder is a helper process holding the lock until its stdin closes.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startLockHolder(t *testing.T, path string) *lockHolder {
	t.Helper()
	cmd := testenv.HelperCmd(t, "hold-lock", path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &lockHolder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q, want locked", line)
	}
	return h
}

func TestLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.run.lock")
	h := startLockHolder(t, path)
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock while a child holds it = %v; want ErrLocked", err)
	}
	if !LockHeld(path) {
		t.Error("LockHeld = false while a child holds it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := WaitLock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLock with a 100 ms deadline = %v; want DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := WaitLock(ctx, path)
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	h.stdin.Close() // the helper releases and exits
	if err := <-got; err != nil {
		t.Fatalf("WaitLock once released: %v", err)
	}
}

// A holder killed with SIGKILL leaves no stale lock: the kernel drops it.
func TestLockFreedWhenHolderIsKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.run.lock")
	h := startLockHolder(t, path)
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
	l, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after the holder was killed: %v", err)
	}
	_ = l.Release()
}

// A lock another user planted beside the socket, or a symlink there, is
// refused with the fix, never followed or held against us.
func TestTryLockRefusesForeignOrLinkedFile(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("TryLock(symlink) = %v; want a refusal naming the symlink", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "target")); err == nil {
		t.Error("TryLock created the symlink's target")
	}
	if os.Getuid() != 0 {
		t.Skip("a file of another user needs root to create (chown); run as root to cover it")
	}
	foreign := filepath.Join(dir, "foreign.lock")
	if err := os.WriteFile(foreign, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(foreign); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Errorf("TryLock(foreign) = %v; want a refusal naming the owner", err)
	}
}
