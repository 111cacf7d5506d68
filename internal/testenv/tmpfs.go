package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of size (mount's syntax: "2m") on dir, which
// must exist, mode 0700, and unmounts it when the test ends: after every
// cleanup registered later, so register it before starting anything that
// uses it. Mounting needs root (CAP_SYS_ADMIN): without it the test
// skips, saying so; any other failure fails it.
func MountTmpfs(t testing.TB, dir, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skipf("mounting a %s tmpfs on %s needs root; run the tests as root to include this one", size, dir)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if notPermitted(string(out)) {
			t.Skipf("mount a tmpfs on %s is not permitted here (a container without CAP_SYS_ADMIN?): %s", dir, out)
		}
		t.Fatalf("mount a %s tmpfs on %s: %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s (detached with umount -l)", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

func notPermitted(out string) bool {
	out = strings.ToLower(out)
	return strings.Contains(out, "permission denied") || strings.Contains(out, "not permitted") ||
		strings.Contains(out, "must be superuser")
}

// FillUp writes dir/name until the filesystem has no space left, down to
// its last blocks, and returns the file's path (remove it to free the
// space).
func FillUp(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, n := range []int{len(buf), 4096, 512, 1} {
		for {
			_, err := f.Write(buf[:n])
			if err == nil {
				continue
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	return path
}

// Reserve gives path (created if missing) size bytes of room that
// appends use without taking new space (fallocate, keeping the size):
// so a file stays appendable after FillUp fills its filesystem.
func Reserve(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const keepSize = 1 // FALLOC_FL_KEEP_SIZE
	if err := syscall.Fallocate(int(f.Fd()), keepSize, 0, size); err != nil {
		t.Fatalf("reserve %d bytes for %s: %v", size, path, err)
	}
}
