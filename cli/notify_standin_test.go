package cli_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifyStandin is the sd_notify side of the unit stand-in: a datagram
// socket named by NOTIFY_SOCKET that applies NotifyAccess= as systemd does
// (main: only the main pid's messages count; all: anyone's) and follows a
// MAINPID= change, which is how a daemon handing over tells systemd that
// its successor is the service's main process now.
type notifyStandin struct {
	path   string
	access string
	conn   *net.UnixConn
	mu     sync.Mutex
	main   int
	moves  []int // the pids MAINPID= moved the service to
	ready  int   // READY=1 messages accepted
	closed chan struct{}
}

func startNotify(t *testing.T, access string) *notifyStandin {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "kn")
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyStandin{path: filepath.Join(dir, "notify"), access: access, closed: make(chan struct{})}
	n.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := n.conn.SyscallConn()
	_ = raw.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) })
	go n.read()
	t.Cleanup(func() { n.conn.Close(); <-n.closed; os.RemoveAll(dir) })
	return n
}

// read applies every datagram until the socket closes.
func (n *notifyStandin) read() {
	defer close(n.closed)
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	for {
		k, ok, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		n.apply(senderPid(oob[:ok]), string(buf[:k]))
	}
}

// senderPid is the pid in the datagram's SCM_CREDENTIALS, 0 if none.
func senderPid(oob []byte) int {
	msgs, _ := syscall.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		if c, err := syscall.ParseUnixCredentials(&m); err == nil {
			return int(c.Pid)
		}
	}
	return 0
}

// apply is systemd's service_notify_message, for the fields kache sends.
func (n *notifyStandin) apply(pid int, msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.access != "all" && (n.access != "main" || pid != n.main) {
		return
	}
	for _, line := range strings.Split(msg, "\n") {
		switch k, v, _ := strings.Cut(line, "="); k {
		case "MAINPID":
			if p, err := strconv.Atoi(v); err == nil && p > 0 {
				n.main = p
				n.moves = append(n.moves, p)
			}
		case "READY":
			n.ready++
		}
	}
}

// started records the main process the manager itself started.
func (n *notifyStandin) started(pid int) {
	n.mu.Lock()
	n.main = pid
	n.mu.Unlock()
}

// mainPid is the process the manager follows now.
func (n *notifyStandin) mainPid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.main
}

func (n *notifyStandin) mainMoves() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.moves...)
}

// waitGone waits until pid no longer exists (it is not our child, so it
// cannot be waited for), or stop closes.
func waitGone(pid int, stop <-chan struct{}) bool {
	for syscall.Kill(pid, 0) == nil && !zombie(pid) {
		select {
		case <-stop:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// zombie reports whether pid has exited but is not reaped yet (its new
// parent, after its own parent exited, may be slow or never reap).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}
