//go:build linux

package rpc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestKeptConnectionHasNoArmedDeadline: the Linux connection's deadline is
// a timer that kills the socket, so a call must disarm it on success or the
// kept connection would die CallTimeout after every call.
func TestKeptConnectionHasNoArmedDeadline(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{})
	c := ts.client(t)
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	fc, ok := c.conn.(*fdConn)
	if !ok {
		t.Fatalf("the default dialer gave a %T, want *fdConn", c.conn)
	}
	fc.mu.Lock()
	armed := fc.timer != nil
	fc.mu.Unlock()
	if armed || fc.expired.Load() {
		t.Fatalf("after a successful call the kept connection's deadline is armed=%v expired=%v", armed, fc.expired.Load())
	}
}

// TestFdConnDeadlineInterruptsABlockedRead checks the timer wakes a read
// that would otherwise block forever, and that the error is a timeout.
func TestFdConnDeadlineInterruptsABlockedRead(t *testing.T) {
	g := newGate()
	ts := startServer(t, g, ServerOptions{})
	nc, err := dialUnix(context.Background(), ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte(statusLine)); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the server holds the answer back: the read below blocks
	nc.SetDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err = nc.Read(make([]byte, 64))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read: got %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the deadline took %s to interrupt the read", d)
	}
	close(g.release)
}
