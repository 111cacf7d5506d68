package daemonctl

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

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
