//go:build linux

package procid

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

func TestInspectSelf(t *testing.T) {
	info, err := Inspect(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if info.Pid != os.Getpid() || info.UID != os.Getuid() || info.Exe != exe || !slices.Equal(info.Args, os.Args) {
		t.Errorf("Inspect(self) = %+v; want pid %d uid %d exe %s args %q", info, os.Getpid(), os.Getuid(), exe, os.Args)
	}
	again, _ := Inspect(os.Getpid())
	if info.StartTime == 0 || again.StartTime != info.StartTime {
		t.Errorf("start time %d then %d; want a stable non-zero value", info.StartTime, again.StartTime)
	}
	if _, err := Inspect(1 << 30); err == nil {
		t.Error("Inspect of a pid that cannot exist succeeded")
	}
}

// startProc starts a long-running process and kills it at cleanup.
func startProc(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// fakeDaemon starts the test binary through a symlink named kache as
// `kache daemon run`, with env added to a kache-free environment.
func fakeDaemon(t *testing.T, kache, cwd string, env ...string) int {
	t.Helper()
	cmd := exec.Command(kache, "daemon", "run")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KACHE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = cwd
	return startProc(t, cmd)
}

func pids(infos []ProcInfo) []int {
	var out []int
	for _, p := range infos {
		out = append(out, p.Pid)
	}
	return out
}

func TestFindDaemons(t *testing.T) {
	dir := testenv.SockDir(t)
	kache := filepath.Join(dir, "kache")
	if err := os.Symlink(testenv.Exe(t), kache); err != nil {
		t.Fatal(err)
	}
	sockA, sockB := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	a := fakeDaemon(t, kache, "/", "KACHE_SOCKET_PATH="+sockA)
	b := fakeDaemon(t, kache, "/", "KACHE_SOCKET_PATH="+sockB)
	c := fakeDaemon(t, kache, dir, "KACHE_CACHE_DIR=cache") // relative: against its cwd
	sleeper := startProc(t, exec.Command("sleep", "30"))
	daemonBin := filepath.Join(dir, DaemonName)
	if err := os.Symlink(testenv.Exe(t), daemonBin); err != nil {
		t.Fatal(err)
	}
	sockD := filepath.Join(dir, "d.sock")
	dcmd := exec.Command(daemonBin, "run", "--background")
	dcmd.Env = append(os.Environ(), "KACHE_SOCKET_PATH="+sockD)
	d := startProc(t, dcmd)
	testenv.WaitFor(t, 5*time.Second, "the fake kache-daemon to exec", func() bool {
		_, ok := IsOurDaemon(d, sockD)
		return ok
	})

	found, err := FindDaemons(sockA)
	if err != nil || !slices.Equal(pids(found), []int{a}) {
		t.Fatalf("FindDaemons(a.sock) = %v, %v; want [%d] (not %d, %d)", pids(found), err, a, b, c)
	}
	if found[0].Args[0] != kache || found[0].StartTime == 0 {
		t.Errorf("found %+v; want argv[0] %s and a start time", found[0], kache)
	}
	viaCache := filepath.Join(dir, "cache", "daemon.sock")
	if found, _ := FindDaemons(viaCache); !slices.Equal(pids(found), []int{c}) {
		t.Errorf("FindDaemons(%s) = %v; want [%d]", viaCache, pids(found), c)
	}
	if found, _ := FindDaemons(sockD); !slices.Equal(pids(found), []int{d}) {
		t.Errorf("FindDaemons(d.sock) = %v; want the kache-daemon [%d]", pids(found), d)
	}
	if _, ok := IsOurDaemon(b, sockB); !ok {
		t.Errorf("IsOurDaemon(b, b.sock) = false")
	}
	for _, pid := range []int{b, sleeper, os.Getpid()} {
		if _, ok := IsOurDaemon(pid, sockA); ok {
			t.Errorf("IsOurDaemon(%d, a.sock) = true; it is not a daemon for a.sock", pid)
		}
	}
}

// A pid from a stale state file, now reused by an unrelated process of the
// same user, must not pass.
func TestIsOurDaemonRejectsReusedPid(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	cmd := exec.Command("sleep", "30")
	cmd.Env = append(os.Environ(), "KACHE_SOCKET_PATH="+sock) // even with our socket in its env
	pid := startProc(t, cmd)
	testenv.WaitFor(t, 5*time.Second, "sleep to exec", func() bool {
		info, err := Inspect(pid)
		return err == nil && len(info.Args) > 0 && info.Args[0] == "sleep"
	})
	if info, ok := IsOurDaemon(pid, sock); ok {
		t.Errorf("IsOurDaemon(sleep %d) = true: %+v", pid, info)
	}
	if _, ok := IsOurDaemon(1<<30, sock); ok {
		t.Error("IsOurDaemon of a missing pid = true")
	}
}

// TestExited: a running process has not exited; killed and not yet
// reaped (a zombie) it has; reaped, it has.
func TestExited(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if Exited(pid) {
		t.Fatal("a running sleep has exited?")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !Exited(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !Exited(pid) {
		t.Fatal("a killed, unreaped sleep (a zombie) has not exited")
	}
	cmd.Wait()
	if !Exited(pid) {
		t.Fatal("a reaped process has not exited")
	}
}
