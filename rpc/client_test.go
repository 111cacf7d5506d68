package rpc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// countingDial dials the socket and counts how often it did.
func countingDial(n *atomic.Int32, wrap bool) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, socket string) (net.Conn, error) {
		n.Add(1)
		nc, err := dialUnix(ctx, socket)
		if err != nil || !wrap {
			return nc, err
		}
		return struct{ net.Conn }{nc}, nil // hides the fd: no liveness peek
	}
}

func TestRoundTripEveryOp(t *testing.T) {
	rec := &recorder{}
	var activity atomic.Int32
	ts := startServer(t, rec, ServerOptions{OnRequest: func() { activity.Add(1) }})
	var dials atomic.Int32
	c := ts.client(t)
	c.Dial = countingDial(&dials, false)
	ctx := context.Background()

	st, err := c.Status(ctx)
	expect(t, err, st.Pid == 42 && st.State == "running", "status", st)
	stats, err := c.Stats(ctx)
	expect(t, err, stats.Builds == 3 && stats.UploadsCompleted == 7, "stats", stats)
	entries := []UploadEntry{{Key: "a", Path: "/p/a"}, {Key: "b", Path: "/p/b"}}
	up, err := c.Upload(ctx, entries)
	expect(t, err, up.Queued == 2 && reflect.DeepEqual(rec.last().Upload.Entries, entries), "upload", up)
	found, err := c.RemoteCheck(ctx, "hit", 1500*time.Millisecond)
	expect(t, err, found && rec.last().RemoteCheck.DeadlineMs == 1500, "remote_check hit", rec.last().RemoteCheck)
	found, err = c.RemoteCheck(ctx, "miss", 0)
	expect(t, err, !found && rec.last().RemoteCheck.DeadlineMs == 3000, "remote_check default deadline", rec.last().RemoteCheck)
	err = c.Prefetch(ctx, []string{"k1", "k2"})
	expect(t, err, reflect.DeepEqual(rec.last().Prefetch.Keys, []string{"k1", "k2"}), "prefetch", rec.last().Prefetch)
	err = c.BuildStarted(ctx, "sess-1")
	expect(t, err, rec.last().BuildStarted.SessionID == "sess-1", "build_started", rec.last().BuildStarted)
	sd, err := c.Shutdown(ctx, "test")
	expect(t, err, sd.Pending == 2 && rec.last().Shutdown.Reason == "test", "shutdown", sd)

	for _, r := range rec.reqs {
		if r.Proto != ProtocolVersion || r.ClientEpoch != 1234 {
			t.Errorf("%s arrived with proto %d epoch %d, want %d and 1234", r.Op, r.Proto, r.ClientEpoch, ProtocolVersion)
		}
	}
	if n := activity.Load(); n != 8 {
		t.Errorf("OnRequest ran %d times for 8 requests", n)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("8 calls dialled %d times, want one kept connection", n)
	}
}

func expect(t *testing.T, err error, ok bool, what string, got any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !ok {
		t.Fatalf("%s: unexpected answer %+v", what, got)
	}
}

func TestFailedAnswerIsErrorAndResponse(t *testing.T) {
	h := HandlerFunc(func(context.Context, *Request) *Response {
		return Fail(ErrNoRemote, "no remote configured; the intent stays in the spool")
	})
	ts := startServer(t, h, ServerOptions{})
	c := ts.client(t)
	resp, err := c.Call(context.Background(), &Request{Op: OpStatus})
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrNoRemote || resp == nil || resp.OK || resp.Error != e {
		t.Fatalf("got resp %+v err %v; want the response and its *Error", resp, err)
	}
	if _, err := c.Upload(context.Background(), []UploadEntry{{Key: "k", Path: "/p"}}); KindOf(err) != ErrNoRemote {
		t.Fatalf("Upload: got %v, want kind no_remote", err)
	}
}

func TestNotRunningMissingSocket(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	_, err := (&Client{Socket: sock}).Status(context.Background())
	wantNotRunning(t, err, sock, syscall.ENOENT)
}

func TestNotRunningStaleSocket(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "daemon.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	_, err = (&Client{Socket: sock}).Status(context.Background())
	wantNotRunning(t, err, sock, syscall.ECONNREFUSED)
	if !strings.Contains(err.Error(), "(dial: connection refused)") {
		t.Errorf("message %q should end with the dial cause", err)
	}
}

func wantNotRunning(t *testing.T, err error, sock string, cause error) {
	t.Helper()
	if !IsNotRunning(err) || !errors.Is(err, cause) {
		t.Fatalf("got %v; want ErrNotRunning wrapping %v", err, cause)
	}
	msg := err.Error()
	if !strings.Contains(msg, "daemon not running at "+sock) || !strings.Contains(msg, "run `kache daemon start`") {
		t.Fatalf("message %q should name the socket and `kache daemon start`", msg)
	}
}

func TestOtherDialFailuresAreNotNotRunning(t *testing.T) {
	c := &Client{Socket: "/x.sock", Dial: func(context.Context, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	}}
	_, err := c.Status(context.Background())
	if err == nil || IsNotRunning(err) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("permission denied: got %v, want a plain dial error", err)
	}
}

func TestReconnectAfterServerClosedKeptConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap bool // without the fd, the write failure triggers the retry
	}{{"peek", false}, {"write-failure", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, &recorder{}, ServerOptions{ReadTimeout: 100 * time.Millisecond})
			var dials atomic.Int32
			c := ts.client(t)
			c.Dial = countingDial(&dials, tc.wrap)
			if _, err := c.Status(context.Background()); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 5*time.Second, "the server to drop the idle connection", func() bool { return ts.srv.ActiveConns() == 0 })
			if _, err := c.Status(context.Background()); err != nil {
				t.Fatalf("call on a connection the server closed: %v", err)
			}
			if n := dials.Load(); n != 2 {
				t.Fatalf("dialled %d times, want 2", n)
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	g := newGate()
	ts := startServer(t, g, ServerOptions{})
	c := ts.client(t)
	c.CallTimeout = 150 * time.Millisecond
	start := time.Now()
	_, err := c.Call(context.Background(), &Request{Op: OpStats})
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "kache daemon restart") {
		t.Fatalf("got %v; want ErrNoAnswer suggesting a restart", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("call took %s with a 150ms timeout", d)
	}
	<-g.entered
	close(g.release)
	if _, err := c.Call(context.Background(), &Request{Op: OpStats}); err != nil {
		t.Fatalf("call after a timeout: %v", err)
	}
}

func TestCallerContextWins(t *testing.T) {
	g := newGate()
	ts := startServer(t, g, ServerOptions{})
	c := ts.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-g.entered; cancel() }()
	_, err := c.Call(ctx, &Request{Op: OpStatus})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("cancelled call: got %v, want context.Canceled", err)
	}
	close(g.release)
}

func TestConcurrentCallsShareOneClient(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := ts.client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if st, err := c.Status(context.Background()); err != nil || st.Pid != 42 {
					errs <- errors.Join(err, errors.New("bad status"))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := ts.srv.ActiveConns(); n != 1 {
		t.Fatalf("one client holds %d connections, want 1", n)
	}
}
