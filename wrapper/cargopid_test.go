package wrapper

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestCargoAbove: a process under a build script under cargo belongs to
// that cargo; a process with no cargo above it to its parent.
func TestCargoAbove(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"cargo", "build-script-build"} {
		b, err := os.ReadFile("/bin/sh")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pidFile := filepath.Join(dir, "pid")
	// cargo runs a build script, which runs a process that writes its pid.
	cargo := exec.Command(filepath.Join(dir, "cargo"), "-c", `"$0" -c 'sh -c "echo \$\$ > $1; sleep 60; true"; true' x "$1"; true`,
		filepath.Join(dir, "build-script-build"), pidFile)
	cargo.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cargo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cargo.Process.Pid, syscall.SIGKILL)
		_ = cargo.Wait()
	})
	var leaf int
	testenv.WaitFor(t, 20*time.Second, "the process under the build script", func() bool {
		b, _ := os.ReadFile(pidFile)
		leaf, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return leaf > 0
	})
	_, parent, ok := procStat(leaf)
	if comm, _, _ := procStat(parent); !ok || comm != "build-script-bu" { // comm is cut to 15 bytes
		t.Fatalf("the leaf's parent is %q, want the build script", comm)
	}
	if got := cargoAbove(parent); got != cargo.Process.Pid {
		t.Errorf("cargoAbove(build script %d) = %d, want cargo %d", parent, got, cargo.Process.Pid)
	}
	if got := cargoAbove(cargo.Process.Pid); got != cargo.Process.Pid {
		t.Errorf("cargoAbove(cargo) = %d, want %d", got, cargo.Process.Pid)
	}
	if comm, _, _ := procStat(os.Getpid()); comm == "" {
		t.Error("procStat of this process: no command name")
	}
	if got := cargoAbove(os.Getpid()); got != os.Getpid() && !isCargo(got) {
		t.Errorf("cargoAbove(this test %d) = %d, not itself with no cargo above", os.Getpid(), got)
	}
	if got := BuildPid(); got != 0 && !isCargo(got) {
		t.Errorf("BuildPid() = %d, which is not cargo: a wrapper run by hand holds no uploads", got)
	}
}
