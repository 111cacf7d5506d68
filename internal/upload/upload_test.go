package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// entries makes n entries over one real source file.
func entries(t *testing.T, n int) []Entry {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: fmt.Sprintf("k%04d", i), Path: src}
	}
	return es
}

// TestCheck: a bad key or a missing path anywhere in the batch is
// refused, and nothing is written.
func TestCheck(t *testing.T) {
	es := entries(t, 3)
	if err := Check(es); err != nil {
		t.Fatalf("good entries: %v", err)
	}
	for _, bad := range []Entry{{Key: "../x", Path: es[0].Path}, {Key: "ok", Path: "/nonexistent/kache-test"}} {
		if err := Check(append(es, bad)); !errors.Is(err, spool.ErrInvalidEntry) {
			t.Errorf("%+v: %v, want ErrInvalidEntry", bad, err)
		}
	}
	if err := ValidKey("a.manifest.json"); err == nil {
		t.Error("ValidKey accepted a key ending in a manifest suffix")
	}
}

// TestPrivateAndStore: kache's directories are made 0700; one that others
// can write is refused, and then Store gives no store.
func TestPrivateAndStore(t *testing.T) {
	p := config.Paths{CacheDir: filepath.Join(t.TempDir(), "cache")}
	if err := Private(p); err != nil {
		t.Fatal(err)
	}
	s, err := Store(p)
	if err != nil || s.Dir != p.StoreDir() {
		t.Fatalf("Store = %+v, %v", s, err)
	}
	if fi, err := os.Stat(p.SpoolDir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir: %v %v, want 0700", fi.Mode(), err)
	}
	if err := os.Chmod(p.CacheDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := Private(p); err == nil {
		t.Error("Private accepted a world-writable cache dir")
	}
	if s, err := Store(p); err == nil || s.Dir != "" {
		t.Errorf("Store on a world-writable cache dir = %+v, %v; want an error and no store", s, err)
	}
}

// serve runs a real rpc.Server that takes every upload and counts calls.
func serve(t *testing.T, calls *atomic.Int32) string {
	h := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) *rpc.Response {
		calls.Add(1)
		return &rpc.Response{OK: true, Upload: &rpc.UploadResult{Queued: len(req.Upload.Entries)}}
	})
	srv := rpc.NewServer(h, rpc.ServerOptions{MaxConns: 4, Log: slog.New(slog.DiscardHandler)})
	sock := filepath.Join(testenv.SockDir(t), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestBatchChunks: 600 entries go as three calls of at most 256, every
// intent written with an absolute path, all counted as handed over.
func TestBatchChunks(t *testing.T) {
	var calls atomic.Int32
	c := &rpc.Client{Socket: serve(t, &calls), Epoch: 1}
	defer c.Close()
	dir := filepath.Join(t.TempDir(), "spool")
	es := entries(t, 600)
	handed, out, err := Batch(context.Background(), &daemonctl.Wrapper{Client: c}, dir, es, 1)
	if err != nil || handed != 600 || out.Queued != 600 || out.Kept != nil {
		t.Fatalf("Batch = %d, %+v, %v; want 600 handed and queued", handed, out, err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d upload calls, want 3 chunks", n)
	}
	if n := spool.Count(dir); n != 600 {
		t.Errorf("%d intents in the spool, want 600", n)
	}
}

// TestBatchOffline: with no daemon and no way to start one, the first
// chunk is kept and the rest is still written: every intent waits in the
// spool, none counted as handed over.
func TestBatchOffline(t *testing.T) {
	c := &rpc.Client{Socket: filepath.Join(testenv.SockDir(t), "none.sock"), Epoch: 1}
	defer c.Close()
	dir := filepath.Join(t.TempDir(), "spool")
	handed, out, err := Batch(context.Background(), &daemonctl.Wrapper{Client: c}, dir, entries(t, 300), 1)
	if err != nil || handed != 0 || out.Kept == nil {
		t.Fatalf("Batch offline = %d, %+v, %v; want nothing handed and the intents kept", handed, out, err)
	}
	if n := spool.Count(dir); n != 300 {
		t.Errorf("%d intents in the spool, want 300", n)
	}
}
