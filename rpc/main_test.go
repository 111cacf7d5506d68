package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"go.uber.org/goleak"
)

// TestMain runs a helper process when the test binary is re-executed as one
// (see helper_test.go), else the tests under goleak.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	goleak.VerifyTestMain(m)
}

type testServer struct {
	srv  *Server
	sock string
	done chan error
}

// startServer serves h on a fresh socket and shuts it down at cleanup,
// checking that Serve returned nil.
func startServer(t testing.TB, h Handler, o ServerOptions) *testServer {
	t.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return serve(t, NewServer(h, o))
}

// serve runs srv on a fresh socket, for tests that adjust srv first.
func serve(t testing.TB, srv *Server) *testServer {
	t.Helper()
	sock := filepath.Join(testenv.SockDir(t), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, sock: sock, done: make(chan error, 1)}
	go func() { ts.done <- ts.srv.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop closes the server and checks Serve's result; safe to call twice.
func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	ts.srv.Close()
	select {
	case err, ok := <-ts.done:
		if ok && err != nil {
			t.Errorf("Serve returned %v, want nil after Close", err)
		}
		if ok {
			close(ts.done)
		}
	case <-time.After(10 * time.Second):
		t.Error("Serve did not return after Close")
	}
}

func (ts *testServer) client(t testing.TB) *Client {
	c := &Client{Socket: ts.sock, Epoch: 1234}
	t.Cleanup(func() { c.Close() })
	return c
}

// raw is a hand-driven connection for framing tests.
type raw struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, sock string) *raw {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &raw{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *raw) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one response line and decodes it.
func (c *raw) recv() *Response {
	c.t.Helper()
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("read response: %v (got %q)", err, line)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		c.t.Fatalf("response %q is not JSON: %v", line, err)
	}
	return &resp
}

// expectClosed asserts the server closed the connection with nothing more to say.
func (c *raw) expectClosed() {
	c.t.Helper()
	line, err := c.r.ReadBytes('\n')
	if err == nil || len(line) > 0 {
		c.t.Fatalf("want the connection closed, got %q, %v", line, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("want the connection closed, read timed out instead")
	}
}

func wantKind(t testing.TB, resp *Response, kind ErrorKind) {
	t.Helper()
	if resp.OK || resp.Error == nil || resp.Error.Kind != kind {
		t.Fatalf("want ok:false kind %q, got ok=%v error=%+v", kind, resp.OK, resp.Error)
	}
	if resp.Error.Message == "" {
		t.Fatalf("error %q has an empty message", kind)
	}
}

// recorder is a Handler that answers every op with a recognisable payload
// and keeps the requests it saw.
type recorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (r *recorder) Handle(_ context.Context, req *Request) *Response {
	r.mu.Lock()
	r.reqs = append(r.reqs, *req)
	r.mu.Unlock()
	resp := OKResponse()
	switch req.Op {
	case OpStatus:
		resp.Status = &Status{Pid: 42, State: "running", Socket: "s"}
	case OpStats:
		resp.Stats = &Stats{Counters: Counters{Builds: 3, UploadsCompleted: 7}}
	case OpUpload:
		resp.Upload = &UploadResult{Queued: len(req.Upload.Entries)}
	case OpRemoteCheck:
		found := req.RemoteCheck.Key == "hit"
		resp.Found = &found
	case OpShutdown:
		resp.Shutdown = &ShutdownResult{Pending: 2}
	}
	return resp
}

// count is how many requests reached the handler.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *recorder) last() Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

// gate is a handler that blocks each request until released, announcing it
// on entered.
type gate struct {
	entered chan *Request
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan *Request, 16), release: make(chan struct{})} }

func (g *gate) Handle(ctx context.Context, req *Request) *Response {
	g.entered <- req
	select {
	case <-g.release:
		return OKResponse()
	case <-ctx.Done():
		return Fail(ErrShuttingDown, "cancelled")
	}
}
