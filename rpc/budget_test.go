package rpc

import (
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// partial is the first n bytes of a padded status line: no newline yet.
func partial(n int) []byte { return padded(n + 100)[:n] }

func TestBufferBudgetIsSharedAcrossConnections(t *testing.T) {
	const budgetSize = 3 << 20
	ts := startServer(t, &recorder{}, ServerOptions{MaxBuffered: budgetSize})
	used := func() int64 { return ts.srv.budget.used.Load() }

	a := dialRaw(t, ts.sock)
	line := padded(2 << 20)
	a.send(string(line[:len(line)-10]))
	testenv.WaitFor(t, 10*time.Second, "the first partial line to be buffered", func() bool { return used() >= 2<<20-16<<10 })

	b := dialRaw(t, ts.sock)
	go b.nc.Write(partial(2 << 20)) // may fail with EPIPE once refused
	resp := b.recv()
	wantKind(t, resp, ErrBusy)
	if !strings.Contains(resp.Error.Message, "retry") {
		t.Errorf("busy message %q should say to retry", resp.Error.Message)
	}
	b.expectClosed()
	if u := used(); u > budgetSize {
		t.Fatalf("%d bytes buffered, over the %d-byte budget", u, budgetSize)
	}

	a.send(string(line[len(line)-10:]))
	if resp := a.recv(); !resp.OK {
		t.Fatalf("the connection within the budget was refused: %+v", resp.Error)
	}
	testenv.WaitFor(t, 10*time.Second, "the answered line's buffer to be given back", func() bool { return used() == 0 })

	c := dialRaw(t, ts.sock)
	go c.nc.Write(padded(2 << 20))
	if resp := c.recv(); !resp.OK {
		t.Fatalf("after the budget was given back a 2 MiB line was refused: %+v", resp.Error)
	}
}

func TestClosedConnectionGivesBackItsBudget(t *testing.T) {
	ts := startServer(t, &recorder{}, ServerOptions{MaxBuffered: 3 << 20})
	a := dialRaw(t, ts.sock)
	a.send(string(partial(1 << 20)))
	testenv.WaitFor(t, 10*time.Second, "the partial line to be buffered", func() bool { return ts.srv.budget.used.Load() > 0 })
	a.nc.Close()
	testenv.WaitFor(t, 10*time.Second, "the budget to be given back", func() bool { return ts.srv.budget.used.Load() == 0 })
}
