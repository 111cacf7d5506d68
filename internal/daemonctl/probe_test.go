package daemonctl

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
)

// TestProbeSilent: what a client sees when no daemon answers, with a real
// run lock and a real socket: nothing (absent), the lock held and no
// socket (socket gone), the lock held and a socket that accepts but never
// answers (wedged), a socket that accepts with nobody holding the lock
// (foreign).
func TestProbeSilent(t *testing.T) {
	dir := testenv.SockDir(t)
	p := config.Paths{CacheDir: t.TempDir(), Socket: filepath.Join(dir, "d.sock")}
	probe := func() Health { return Probe(context.Background(), p, 1, 300*time.Millisecond).Health }
	if h := probe(); h != Absent {
		t.Fatalf("nothing there: %s, want absent", h)
	}
	lock, err := runlock.TryLock(p.RunLock())
	if err != nil {
		t.Fatal(err)
	}
	if h := probe(); h != SocketGone {
		t.Fatalf("lock held, no socket: %s, want socket_gone", h)
	}
	ln, err := net.Listen("unix", p.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts and holds every connection, never answering
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	if h := probe(); h != Wedged {
		t.Fatalf("lock held, socket silent: %s, want wedged", h)
	}
	lock.Release()
	if h := probe(); h != Foreign {
		t.Fatalf("socket silent, nobody holds the lock: %s, want foreign", h)
	}
}

// TestProbeAnswered: a daemon's answer is classified by its state.
func TestProbeAnswered(t *testing.T) {
	for state, want := range map[states.State]Health{
		states.Starting: Starting, states.Running: Running, states.Draining: Draining, states.IdleExiting: Draining,
		states.EpochStale: Draining, states.HandingOver: HandingOver, states.HandedOver: HandingOver,
	} {
		if got := answered(&rpc.Status{State: string(state)}); got != want {
			t.Errorf("state %s: %s, want %s", state, got, want)
		}
	}
}

// TestReportLive: the live daemon is the one that answered, else the one
// the state file names while the run lock is held; a state file nobody
// holds is a dead daemon's.
func TestReportLive(t *testing.T) {
	t0 := time.Unix(100, 0)
	rec := &statefile.StateRecord{Pid: 7, StartedAt: t0}
	for _, c := range []struct {
		name    string
		r       Report
		pid     int
		present bool
	}{
		{"answered", Report{Status: &rpc.Status{Pid: 9, StartedAt: t0}}, 9, true},
		{"held, silent", Report{Held: true, State: rec}, 7, true},
		{"held, no state file", Report{Held: true}, 0, true},
		{"state file, lock free", Report{State: rec}, 0, false},
		{"nothing", Report{}, 0, false},
	} {
		pid, started, ok := c.r.Live()
		if pid != c.pid || ok != (c.pid != 0) || ok && !started.Equal(t0) || c.r.Present() != c.present {
			t.Errorf("%s: Live() = %d, %v, %v; Present() = %v", c.name, pid, started, ok, c.r.Present())
		}
	}
}

// TestBreaker: three failed starts within the window open the breaker
// for this installation only; a success closes it.
func TestBreaker(t *testing.T) {
	p := config.Paths{CacheDir: t.TempDir(), Socket: filepath.Join(t.TempDir(), "d.sock")}
	now := time.Unix(1000, 0)
	b := NewBreaker(p, 1)
	b.now, b.logHint = func() time.Time { return now }, func() string { return "" }
	for range breakerLimit - 1 {
		b.Record(errors.New("boom"))
	}
	if ok, _ := b.Allow(); !ok {
		t.Fatal("open before the limit")
	}
	b.Record(errors.New("boom"))
	if ok, why := b.Allow(); ok || !strings.Contains(why, "last: boom") {
		t.Fatalf("Allow after %d failures = %v, %q; want refused, naming the error", breakerLimit, ok, why)
	}
	other := NewBreaker(p, 2)
	other.now = b.now
	if ok, _ := other.Allow(); !ok {
		t.Error("another installation is held by this one's breaker")
	}
	b.Record(nil)
	if ok, _ := b.Allow(); !ok {
		t.Error("still open after a success")
	}
}
