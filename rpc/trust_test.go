package rpc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// nobody is the second user of the cross-user tests.
const nobody = 65534

// logBuffer is a concurrency-safe log sink for asserting what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

// openToAll lets another user reach the socket: connecting to a Unix socket
// needs search permission on its directory and write permission on it.
func openToAll(t *testing.T, sock string) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
}

func TestServerRefusesAnotherUser(t *testing.T) {
	requireRoot(t)
	logs := &logBuffer{}
	rec := &recorder{}
	ts := startServer(t, rec, ServerOptions{Log: slog.New(slog.NewTextHandler(logs, nil))})
	openToAll(t, ts.sock)
	for i := range 3 {
		out := runHelperOnce(t, "dial", ts.sock, nobody)
		if !strings.Contains(out, `"kind":"forbidden"`) || !strings.Contains(out, "uid 65534") {
			t.Fatalf("connection %d from uid %d got %q, want one forbidden line naming its uid", i, nobody, out)
		}
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("the handler saw %d requests from another user", n)
	}
	if n := logs.count("another user"); n != 1 {
		t.Fatalf("refusal logged %d times for 3 connections of one uid, want once:\n%s", n, logs.buf.String())
	}
	if _, err := ts.client(t).Status(context.Background()); err != nil {
		t.Fatalf("the daemon's own user was refused too: %v", err)
	}
}

// TestServerRefusesForeignUIDWithoutRoot covers the refusal path as any
// user, by making the server believe it runs as someone else.
func TestServerRefusesForeignUIDWithoutRoot(t *testing.T) {
	logs := &logBuffer{}
	rec := &recorder{}
	srv := NewServer(rec, ServerOptions{Log: slog.New(slog.NewTextHandler(logs, nil))})
	srv.uid = myUID() + 1
	ts := serve(t, srv)
	for range 3 {
		c := &Client{Socket: ts.sock}
		_, err := c.Status(context.Background())
		c.Close()
		if KindOf(err) != ErrForbidden || !strings.Contains(err.Error(), "KACHE_SOCKET_PATH") {
			t.Fatalf("got %v, want a forbidden error naming KACHE_SOCKET_PATH", err)
		}
	}
	if rec.count() != 0 || logs.count("another user") != 1 {
		t.Fatalf("handler saw %d requests, refusal logged %d times; want 0 and 1", rec.count(), logs.count("another user"))
	}
}

func wantImpostor(t *testing.T, err error, detail string) {
	t.Helper()
	if !errors.Is(err, ErrImpostor) || IsNotRunning(err) {
		t.Fatalf("got %v, want ErrImpostor (and not \"not running\", which would start a daemon)", err)
	}
	if msg := err.Error(); !strings.Contains(msg, detail) || !strings.Contains(msg, "KACHE_SOCKET_PATH") {
		t.Fatalf("message %q should say %q and name KACHE_SOCKET_PATH", msg, detail)
	}
}

func TestClientRefusesSymlinkedSocket(t *testing.T) {
	rec := &recorder{}
	ts := startServer(t, rec, ServerOptions{})
	link := filepath.Join(testenv.SockDir(t), "link.sock")
	if err := os.Symlink(ts.sock, link); err != nil {
		t.Fatal(err)
	}
	_, err := (&Client{Socket: link}).Status(context.Background())
	wantImpostor(t, err, "symlink")
	if ts.srv.ActiveConns() != 0 || rec.count() != 0 {
		t.Fatal("the client connected through the symlink anyway")
	}
}

func TestClientRefusesSocketOwnedByAnotherUser(t *testing.T) {
	requireRoot(t)
	rec := &recorder{}
	ts := startServer(t, rec, ServerOptions{})
	if err := os.Lchown(ts.sock, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := (&Client{Socket: ts.sock}).Status(context.Background())
	wantImpostor(t, err, "owned by uid 65534")
	if rec.count() != 0 {
		t.Fatal("the request was sent to a socket owned by another user")
	}
}

// TestClientRefusesImpostor is the attack: another user binds the socket
// path first in a shared sticky directory and answers every request.
func TestClientRefusesImpostor(t *testing.T) {
	requireRoot(t)
	dir := testenv.SockDir(t)
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "kache.sock")
	imp := startHelper(t, "impostor", sock, nobody)

	if resp := dialRaw(t, sock); true { // an unchecked client would be fooled
		resp.send(statusLine)
		if !resp.recv().OK {
			t.Fatal("the impostor does not answer like a daemon; the test proves nothing")
		}
	}
	_, err := (&Client{Socket: sock}).Upload(context.Background(), benchEntries)
	wantImpostor(t, err, "owned by uid 65534")

	// With the file's owner forged (root can), the peer check still holds.
	if err := os.Lchown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	_, err = (&Client{Socket: sock}).Upload(context.Background(), benchEntries)
	wantImpostor(t, err, "served by a process of uid 65534")

	if got := imp.finish(); got != "received 1\n" {
		t.Fatalf("impostor reports %q; want only the raw probe's line, nothing from the client", got)
	}
}
