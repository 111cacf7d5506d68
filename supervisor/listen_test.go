package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

func TestPrepareDir(t *testing.T) {
	base := testenv.SockDir(t)
	fresh := filepath.Join(base, "a", "b")
	if err := safesocket.PrepareDir(fresh); err != nil {
		t.Fatalf("PrepareDir of a new dir: %v", err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("created with mode %v, want 0700", fi.Mode().Perm())
	}
	for _, mode := range []os.FileMode{0o777, 0o770, 0o702} {
		dir := filepath.Join(base, fmt.Sprintf("m%o", mode))
		mkdirMode(t, dir, mode)
		err := safesocket.PrepareDir(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) || !strings.Contains(err.Error(), "KACHE_SOCKET_PATH") {
			t.Errorf("safesocket.PrepareDir(mode %o) = %v; want a refusal naming the fix", mode, err)
		}
	}
	if err := safesocket.PrepareDir("/tmp"); err != nil {
		t.Errorf("safesocket.PrepareDir(/tmp), sticky and root-owned: %v; want accepted", err)
	}
}

func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareDirOwnedByAnother(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := filepath.Join(testenv.SockDir(t), "theirs")
	mkdirMode(t, dir, 0o700)
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	err := safesocket.PrepareDir(dir)
	if err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
		t.Errorf("PrepareDir of another user's dir = %v; want a refusal", err)
	}
}

// staleSocket leaves a socket file nobody listens on, as a kill -9 does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	staleSocket(t, sock)
	if safesocket.Alive(sock, time.Second) {
		t.Fatal("a stale socket is Alive")
	}
	ln, activated, err := Listen(sock)
	if err != nil || activated {
		t.Fatalf("Listen over a stale socket = %v, activated %v", err, activated)
	}
	defer ln.Close()
	if fi, _ := os.Stat(sock); fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if !safesocket.Alive(sock, time.Second) {
		t.Error("the new listener is not Alive")
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	ln, _, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, _, err := Listen(sock); !errors.Is(err, ErrSocketLive) {
		t.Fatalf("second Listen = %v; want ErrSocketLive", err)
	}
	if !safesocket.Alive(sock, time.Second) {
		t.Error("the first listener lost its socket")
	}
}

func TestListenLeavesNonSocketAlone(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	if err := os.WriteFile(sock, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Listen(sock)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file = %v; want a refusal", err)
	}
	if data, _ := os.ReadFile(sock); string(data) != "mine" {
		t.Error("Listen touched a file that is not a socket")
	}
}

func TestListenRefusesAnotherUsersSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a socket away")
	}
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	staleSocket(t, sock)
	if err := os.Chown(sock, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, _, err := Listen(sock)
	if err == nil || !strings.Contains(err.Error(), "uid 4242") {
		t.Fatalf("Listen over another user's socket = %v; want a refusal", err)
	}
}

// LISTEN_PID naming another process must not make us adopt fd 3.
func TestListenIgnoresActivationForAnotherPid(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	ln, activated, err := Listen(sock)
	if err != nil || activated {
		t.Fatalf("Listen = %v, activated %v; want a plain bind", err, activated)
	}
	ln.Close()
	if os.Getenv("LISTEN_FDS") != "1" {
		t.Error("LISTEN_FDS meant for another process was unset")
	}
}

// A real inherited listener, passed as fd 3 with LISTEN_PID set to the
// child's own pid by a shell that then execs it, as systemd does.
func TestListenSocketActivation(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "kache.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0"`, testenv.Exe(t))
	cmd.Env = testenv.HelperEnv("activated", "")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	want := `activated=true unix=true listen_pid="" listen_fds=""` + "\n"
	if err != nil || line != want {
		t.Fatalf("child reported %q, %v; want %q", line, err, want)
	}
}

func TestNotify(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v; want a no-op", err)
	}
	path := filepath.Join(testenv.SockDir(t), "notify")
	abstract := fmt.Sprintf("@kache-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, name := range []string{path, abstract} {
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		for _, msg := range []string{"READY=1", "STATUS=draining 3 uploads"} {
			if err := Notify(msg); err != nil {
				t.Fatalf("Notify(%q) to %s: %v", msg, name, err)
			}
			buf := make([]byte, 256)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != msg {
				t.Errorf("%s got %q, %v; want %q", name, buf[:n], err, msg)
			}
		}
		conn.Close()
	}
	t.Setenv("NOTIFY_SOCKET", path+".gone")
	if err := Notify("READY=1"); err == nil || !strings.Contains(err.Error(), "sd_notify") {
		t.Errorf("Notify to a missing socket = %v; want an error", err)
	}
}
