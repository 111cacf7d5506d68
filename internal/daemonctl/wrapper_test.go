package daemonctl

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// An upload that meets a daemon at its connection cap ("busy") is retried
// with backoff, as docs/protocol.md tells clients, instead of being left in
// the spool as if the daemon were gone. A real rpc.Server on a real socket.
func TestWrapperUploadRetriesBusy(t *testing.T) {
	h := rpc.HandlerFunc(func(context.Context, *rpc.Request) *rpc.Response {
		return &rpc.Response{OK: true, Upload: &rpc.UploadResult{Queued: 1}}
	})
	srv := rpc.NewServer(h, rpc.ServerOptions{MaxConns: 1, Log: slog.New(slog.DiscardHandler)})
	sock := filepath.Join(testenv.SockDir(t), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	hog, err := net.Dial("unix", sock) // takes the only slot
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the hog counted", func() bool { return srv.ActiveConns() == 1 })
	go func() { time.Sleep(150 * time.Millisecond); hog.Close() }() // frees the slot while the upload retries
	c := &rpc.Client{Socket: sock, Epoch: 1234}
	defer c.Close()
	w := &Wrapper{Client: c, Tries: 5}
	out := w.Upload(context.Background(), []rpc.UploadEntry{{Key: "k", Path: "/p"}})
	if out.Kept != nil || out.Queued != 1 {
		t.Fatalf("Upload while busy = %+v; want it retried and queued", out)
	}
}

// An older installation's client that finds no daemon a moment after the
// daemon exited for a newer installation leaves its intents to that
// installation's daemon instead of starting an older one (which would give
// way again: a flap); past the window, or for a newer client, it starts one.
func TestWrapperLeavesIntentsToANewerInstallation(t *testing.T) {
	sock := filepath.Join(testenv.SockDir(t), "none.sock") // nothing listens: offline
	for _, c := range []struct {
		name      string
		epoch     int64
		gaveWayTo int64
		wantStart bool
	}{
		{"older client, newer daemon gone a moment ago", 100, 200, false},
		{"the newer installation's own client", 200, 200, true},
		{"no recent give-way", 100, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			started := 0
			cl := &rpc.Client{Socket: sock, Epoch: c.epoch, DialTimeout: 50 * time.Millisecond}
			defer cl.Close()
			w := &Wrapper{Client: cl, Tries: 1, GaveWayTo: func() int64 { return c.gaveWayTo },
				Start: func(context.Context) error { started++; return errors.New("not here") }}
			out := w.Upload(context.Background(), []rpc.UploadEntry{{Key: "k", Path: "/p"}})
			if got := started > 0; got != c.wantStart {
				t.Errorf("started a daemon: %v, want %v (%+v)", got, c.wantStart, out)
			}
			if !c.wantStart && !out.HandedOff {
				t.Errorf("outcome %+v: want the intents handed off", out)
			}
		})
	}
}

func TestRecentGiveWayWindow(t *testing.T) {
	p := config.Paths{Socket: filepath.Join(t.TempDir(), "d.sock")}
	now := time.Now()
	if got := RecentGiveWay(p, now); got != 0 {
		t.Errorf("no exit record: %d", got)
	}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{{now.Add(-10 * time.Second), 42}, {now.Add(-2 * time.Minute), 0}} {
		if err := statefile.WriteExit(p.ExitFile(), statefile.ExitRecord{Pid: 1, Reason: "epoch_stale", Code: 75, At: c.at, GaveWayTo: 42}); err != nil {
			t.Fatal(err)
		}
		if got := RecentGiveWay(p, now); got != c.want {
			t.Errorf("exit %v ago: RecentGiveWay = %d, want %d", now.Sub(c.at), got, c.want)
		}
	}
}
