package rpc

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

const statusLine = `{"op":"status","proto":1}` + "\n"

func TestSeveralRequestsOnOneConnection(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	c.send(statusLine + `{"op":"stats","proto":1}` + "\n" + statusLine)
	for i, want := range []Op{OpStatus, OpStats, OpStatus} {
		resp := c.recv()
		if !resp.OK {
			t.Fatalf("response %d: %+v", i, resp.Error)
		}
		if got := resp.Status != nil; got != (want == OpStatus) {
			t.Fatalf("response %d: status present=%v for %s", i, got, want)
		}
	}
}

func TestMalformedLineThenGoodOne(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	c.send("{not json\n")
	wantKind(t, c.recv(), ErrBadRequest)
	c.send(statusLine)
	if resp := c.recv(); !resp.OK || resp.Status.Pid != 42 {
		t.Fatalf("after a malformed line, status answered %+v", resp)
	}
}

func TestBlankLinesAreSkippedAndLastLineNeedsNoNewline(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	c.send("\n  \r\n" + strings.TrimSuffix(statusLine, "\n"))
	c.nc.(*net.UnixConn).CloseWrite()
	if resp := c.recv(); !resp.OK || resp.Status == nil {
		t.Fatalf("unterminated last line answered %+v", resp)
	}
	c.expectClosed()
}

// padded builds a status request line of exactly n bytes, newline included.
func padded(n int) []byte {
	head := `{"op":"status","proto":1,"pad":"`
	tail := "\"}\n"
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestFrameAtTheCapIsServed(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	line := padded(MaxFrame)
	go c.nc.Write(line) // the server reads while we write
	if resp := c.recv(); !resp.OK {
		t.Fatalf("a %d-byte line was refused: %+v", len(line), resp.Error)
	}
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	wrote := make(chan error, 1)
	go func() { _, err := c.nc.Write(padded(MaxFrame + 1)); wrote <- err }()
	wantKind(t, c.recv(), ErrTooLarge)
	c.expectClosed()
	<-wrote // EPIPE or success: the server stopped reading at the cap either way
	st, err := ts.client(t).Status(context.Background())
	if err != nil || st.Pid != 42 {
		t.Fatalf("after an oversized frame another client got %+v, %v", st, err)
	}
}

func TestUnknownOp(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	c.send(`{"op":"frobnicate","proto":1}` + "\n")
	resp := c.recv()
	wantKind(t, resp, ErrUnknownOp)
	if !strings.Contains(resp.Error.Message, "frobnicate") {
		t.Errorf("message %q does not name the op", resp.Error.Message)
	}
}

func TestProtocolMismatch(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := dialRaw(t, ts.sock)
	for _, line := range []string{`{"op":"status","proto":2}`, `{"op":"teleport","proto":9}`, `{"op":"status"}`} {
		c.send(line + "\n")
		resp := c.recv()
		wantKind(t, resp, ErrProtocol)
		if !strings.Contains(resp.Error.Message, "kache daemon restart") || !strings.Contains(resp.Error.Message, "upgrade") {
			t.Errorf("%s: message %q should say to restart the daemon or upgrade", line, resp.Error.Message)
		}
	}
}

func TestMissingArgumentsAreBadRequests(t *testing.T) {
	var seen atomic.Int32
	ts := startServer(t, &recorder{}, ServerOptions{OnRequest: func() { seen.Add(1) }})
	c := dialRaw(t, ts.sock)
	for _, line := range []string{
		`{"op":"upload","proto":1}`,
		`{"op":"upload","proto":1,"upload":{"entries":[]}}`,
		`{"op":"upload","proto":1,"upload":{"entries":[{"key":"k"}]}}`,
		`{"op":"remote_check","proto":1,"remote_check":{"deadline_ms":5}}`,
		`{"op":"remote_check","proto":1,"remote_check":{"key":"k","deadline_ms":-1}}`,
		`{"op":"prefetch","proto":1,"prefetch":{"keys":[]}}`,
		`{"op":"build_started","proto":1}`,
		`[1,2,3]`,
	} {
		c.send(line + "\n")
		wantKind(t, c.recv(), ErrBadRequest)
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("OnRequest ran %d times for bad requests, want 0", n)
	}
}

func TestConnectionCap(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{MaxConns: 2})
	first, second := dialRaw(t, ts.sock), dialRaw(t, ts.sock)
	for _, c := range []*raw{first, second} {
		c.send(statusLine)
		if !c.recv().OK {
			t.Fatal("a connection under the cap was not served")
		}
	}
	third := dialRaw(t, ts.sock)
	wantKind(t, third.recv(), ErrBusy)
	third.expectClosed()
	if _, err := (&Client{Socket: ts.sock}).Status(context.Background()); KindOf(err) != ErrBusy {
		t.Fatalf("client over the cap: got %v, want a busy error", err)
	}

	first.nc.Close()
	testenv.WaitFor(t, 5*time.Second, "the closed connection to be released", func() bool { return ts.srv.ActiveConns() == 1 })
	fourth := dialRaw(t, ts.sock)
	fourth.send(statusLine)
	if !fourth.recv().OK {
		t.Fatal("a connection was refused after a slot was freed")
	}
}

func TestHandlerPanicAnswersInternal(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		switch req.Op {
		case OpStats:
			panic("boom")
		case OpBuildStarted:
			return nil
		}
		return (&recorder{}).Handle(ctx, req)
	})
	ts := startServer(t, h, ServerOptions{})
	c := ts.client(t)
	_, err := c.Stats(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrInternal || !strings.Contains(e.Message, "boom") {
		t.Fatalf("panicking handler: got %v, want an internal error naming the panic", err)
	}
	if err := c.BuildStarted(context.Background(), "s"); KindOf(err) != ErrInternal {
		t.Fatalf("nil answer: got %v, want internal", err)
	}
	if st, err := c.Status(context.Background()); err != nil || st.Pid != 42 {
		t.Fatalf("after a panic the server answered %+v, %v", st, err)
	}
}

func TestReadTimeoutClosesIdleConnection(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{ReadTimeout: 100 * time.Millisecond})
	c := dialRaw(t, ts.sock)
	c.send(statusLine)
	c.recv()
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle connection closed after %s, want about 100ms", d)
	}
	testenv.WaitFor(t, 5*time.Second, "the idle connection to be released", func() bool { return ts.srv.ActiveConns() == 0 })
}

func TestShutdownWaitsForInFlightRequest(t *testing.T) {
	g := newGate()
	ts := startServer(t, g, ServerOptions{})
	idle := dialRaw(t, ts.sock)
	testenv.WaitFor(t, 5*time.Second, "the idle connection to be served", func() bool { return ts.srv.ActiveConns() == 1 })

	answered := make(chan error, 1)
	go func() { _, err := ts.client(t).Call(context.Background(), &Request{Op: OpStatus}); answered <- err }()
	<-g.entered

	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Shutdown(context.Background()) }()
	idle.expectClosed() // shutdown began: idle connections go at once
	testenv.WaitFor(t, 5*time.Second, "the listener to close", func() bool {
		nc, err := net.Dial("unix", ts.sock)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	select {
	case err := <-closed:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	default:
	}
	close(g.release)
	if err := <-answered; err != nil {
		t.Fatalf("in-flight request got %v, want its answer", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
}

func TestShutdownDeadlineCancelsHandlers(t *testing.T) {
	g := newGate()
	ts := startServer(t, g, ServerOptions{})
	c := ts.client(t)
	answered := make(chan error, 1)
	go func() { _, err := c.Call(context.Background(), &Request{Op: OpStatus}); answered <- err }()
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if err := <-answered; err == nil {
		t.Fatal("the forcibly closed call succeeded")
	}
	testenv.WaitFor(t, 5*time.Second, "the cancelled handler to finish", func() bool { return ts.srv.ActiveConns() == 0 })
}

func TestServeAfterCloseReturnsNil(t *testing.T) {
	srv := NewServer(&recorder{}, ServerOptions{})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	sock := testenv.SockDir(t) + "/s"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Fatal("Serve after Close left the listener open")
	}
}

func TestNonObjectRequestsAreBadRequests(t *testing.T) {
	var seen atomic.Int32
	ts := startServer(t, &recorder{}, ServerOptions{OnRequest: func() { seen.Add(1) }})
	c := dialRaw(t, ts.sock)
	for _, line := range []string{`null`, ` null `, `[]`, `[{"op":"status","proto":1}]`, `1`, `-0.5e3`, `"status"`, `true`, `{}`, `{"proto":1}`, `{"op":"","proto":1}`, `{"op":null,"proto":1}`} {
		c.send(line + "\n")
		resp := c.recv()
		wantKind(t, resp, ErrBadRequest)
		if !strings.Contains(resp.Error.Message, `"op"`) && !strings.Contains(resp.Error.Message, "JSON object") {
			t.Errorf("%s: message %q should say a request is a JSON object with an op", line, resp.Error.Message)
		}
	}
	c.send(statusLine)
	if !c.recv().OK {
		t.Fatal("the connection did not survive bad requests")
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("OnRequest ran %d times, want once (for the status line only)", n)
	}
}
