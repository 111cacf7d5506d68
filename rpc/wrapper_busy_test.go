package rpc

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// An upload that meets a daemon at its connection cap ("busy") is retried
// with backoff, as docs/protocol.md tells clients, instead of being left in
// the spool as if the daemon were gone.
func TestWrapperUploadRetriesBusy(t *testing.T) {
	h := HandlerFunc(func(context.Context, *Request) *Response {
		return &Response{OK: true, Upload: &UploadResult{Queued: 1}}
	})
	ts := startServer(t, h, ServerOptions{MaxConns: 1})
	hog, err := net.Dial("unix", ts.sock) // takes the only slot
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the hog counted", func() bool { return ts.srv.ActiveConns() == 1 })
	go func() { time.Sleep(150 * time.Millisecond); hog.Close() }()
	w := &Wrapper{Client: ts.client(t), Tries: 5}
	out := w.Upload(context.Background(), []UploadEntry{{Key: "k", Path: "/p"}})
	if out.Kept != nil || out.Queued != 1 {
		t.Fatalf("Upload while busy = %+v; want it retried and queued", out)
	}
}
