package rpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// helperEnv names the role a re-executed test binary plays instead of
// running tests; helperSocket is the socket it serves or dials.
const (
	helperEnv    = "KACHE_RPC_TEST_HELPER"
	helperSocket = "KACHE_RPC_TEST_SOCKET"
)

// runHelper plays role and returns the process's exit code. Helpers print
// "ready" once they listen, and exit when their stdin closes, so the parent
// waits on conditions instead of sleeping and a dead parent leaves no orphan.
func runHelper(role string) int {
	sock := os.Getenv(helperSocket)
	var err error
	switch role {
	case "serve":
		err = helperServe(sock)
	case "impostor":
		err = helperImpostor(sock)
	case "dial":
		err = helperDial(sock)
	default:
		err = fmt.Errorf("unknown helper role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// helperServe runs a real Server with a trivial handler, for benchmarks
// that need the daemon in another process as it is in production.
func helperServe(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := NewServer(HandlerFunc(trivial), ServerOptions{Log: slog.New(slog.DiscardHandler)})
	go srv.Serve(ln)
	if p := os.Getenv("KACHE_RPC_TEST_CPUPROFILE"); p != "" { // to profile the daemon's side of a benchmark
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// trivial answers every request as a daemon would answer an upload.
func trivial(_ context.Context, req *Request) *Response {
	resp := OKResponse()
	if req.Upload != nil {
		resp.Upload = &UploadResult{Queued: len(req.Upload.Entries)}
	}
	return resp
}

// helperImpostor is what another user would run on a shared socket path:
// it answers every line with success, without any check, so a client that
// does not check its peer would believe it.
func helperImpostor(sock string) error {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer ln.Close()
	os.Chmod(sock, 0o777)
	var received atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go answerAll(nc, &received)
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	fmt.Printf("received %d\n", received.Load())
	return nil
}

// answerAll answers every line on nc with success, counting the lines.
func answerAll(nc net.Conn, received *atomic.Int64) {
	defer nc.Close()
	sc := bufio.NewScanner(nc)
	for sc.Scan() {
		received.Add(1)
		io.WriteString(nc, `{"ok":true,"upload":{"queued":1},"status":{"pid":1}}`+"\n")
	}
}

// helperDial connects as whoever runs it, sends one status line and prints
// the answer and the read's error on stdout.
func helperDial(sock string) error {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	// A refused connection may be closed before the write; its one answer
	// is still there to read, as Client does.
	io.WriteString(nc, statusLine)
	line, err := bufio.NewReader(nc).ReadString('\n')
	fmt.Printf("%s(read: %v)\n", line, err)
	return nil
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startHelper runs this test binary as role on sock, as uid when uid >= 0
// (root only), and waits for it to say ready. It is stopped at cleanup.
func startHelper(t testing.TB, role, sock string, uid int) *helper {
	t.Helper()
	h := &helper{cmd: helperCmd(t, role, sock, uid)}
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.out = bufio.NewReader(stdout)
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start %s helper: %v", role, err)
	}
	t.Cleanup(h.stop)
	if line, err := h.out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("%s helper did not get ready: %q, %v", role, line, err)
	}
	return h
}

// finish stops the helper and returns what it printed after "ready".
func (h *helper) finish() string {
	h.stdin.Close()
	rest, _ := io.ReadAll(h.out)
	h.stop()
	return string(rest)
}

// stop closes the helper's stdin, which ends it, and reaps it.
func (h *helper) stop() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
}

// runHelperOnce runs role to completion and returns its stdout.
func runHelperOnce(t testing.TB, role, sock string, uid int) string {
	t.Helper()
	cmd := helperCmd(t, role, sock, uid)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s helper: %v (stdout %q)", role, err, out)
	}
	return string(out)
}

// helperCmd builds the command for a helper. Another uid cannot execute the
// test binary inside go test's private work dir, so a copy is placed in a
// world-readable directory first.
func helperCmd(t testing.TB, role, sock string, uid int) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		exe = publicCopy(t, exe)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+role, helperSocket+"="+sock)
	cmd.Stderr = os.Stderr
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	return cmd
}

// publicCopy copies exe into a fresh directory every user may enter.
func publicCopy(t testing.TB, exe string) string {
	t.Helper()
	dir := testenv.SockDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "helper.test")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// requireRoot skips tests that need a second user.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to act as a second user (uid 65534); run the tests as root to cover it")
	}
}

var _ = strings.TrimSpace
