package daemonctl

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/runlock"
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
