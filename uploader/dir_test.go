package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader"
)

// remoteContract is what every Remote must do, run against each kind.
var remoteContract = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, r uploader.Remote)
}{
	{"put head get", contractPutHeadGet},
	{"overwrite", contractOverwrite},
	{"missing", contractMissing},
	{"unseekable reader", contractUnseekable},
	{"short body", contractShortBody},
	{"empty object", contractEmpty},
	{"concurrent puts", contractConcurrent},
}

func runRemoteContract(t *testing.T, r uploader.Remote) {
	for _, c := range remoteContract {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c.run(t, ctx, r)
		})
	}
}

func mustPut(t *testing.T, ctx context.Context, r uploader.Remote, key string, data []byte) {
	t.Helper()
	if err := r.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, r uploader.Remote, key string) []byte {
	t.Helper()
	rc, err := r.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func mustHead(t *testing.T, ctx context.Context, r uploader.Remote, key string, want bool) {
	t.Helper()
	got, err := r.Head(ctx, key)
	if err != nil || got != want {
		t.Fatalf("head %s = %v, %v; want %v, nil", key, got, err, want)
	}
}

func contractPutHeadGet(t *testing.T, ctx context.Context, r uploader.Remote) {
	data := []byte("hello kache")
	mustHead(t, ctx, r, "phg-a.b_c-1", false)
	mustPut(t, ctx, r, "phg-a.b_c-1", data)
	mustHead(t, ctx, r, "phg-a.b_c-1", true)
	if got := mustGet(t, ctx, r, "phg-a.b_c-1"); !bytes.Equal(got, data) {
		t.Fatalf("get = %q, want %q", got, data)
	}
}

func contractOverwrite(t *testing.T, ctx context.Context, r uploader.Remote) {
	mustPut(t, ctx, r, "ow", []byte("first version, longer"))
	mustPut(t, ctx, r, "ow", []byte("second"))
	if got := mustGet(t, ctx, r, "ow"); string(got) != "second" {
		t.Fatalf("get after overwrite = %q, want %q", got, "second")
	}
}

func contractMissing(t *testing.T, ctx context.Context, r uploader.Remote) {
	mustHead(t, ctx, r, "never-put", false)
	rc, err := r.Get(ctx, "never-put")
	if !errors.Is(err, uploader.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
	if uploader.IsPermanent(err) {
		t.Fatalf("a missing object is not a permanent failure: %v", err)
	}
}

// contractUnseekable: Put takes any reader, not only files and byte slices.
func contractUnseekable(t *testing.T, ctx context.Context, r uploader.Remote) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB
	if err := r.Put(ctx, "unseekable", io.MultiReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got := mustGet(t, ctx, r, "unseekable"); !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes, want the %d put", len(got), len(data))
	}
}

// contractShortBody: a body shorter than its size fails and stores nothing.
func contractShortBody(t *testing.T, ctx context.Context, r uploader.Remote) {
	err := r.Put(ctx, "short", io.MultiReader(strings.NewReader("only ten b")), 20)
	if err == nil {
		t.Fatal("put of 10 bytes declared as 20 succeeded")
	}
	mustHead(t, ctx, r, "short", false)
}

func contractEmpty(t *testing.T, ctx context.Context, r uploader.Remote) {
	mustPut(t, ctx, r, "empty", nil)
	mustHead(t, ctx, r, "empty", true)
	if got := mustGet(t, ctx, r, "empty"); len(got) != 0 {
		t.Fatalf("empty object read back as %d bytes", len(got))
	}
}

func contractConcurrent(t *testing.T, ctx context.Context, r uploader.Remote) {
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			data := bytes.Repeat([]byte{byte(i)}, 1000+i*997)
			errs <- r.Put(ctx, fmt.Sprintf("conc-%02d", i), bytes.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent put: %v", err)
		}
	}
	for i := range n {
		want := bytes.Repeat([]byte{byte(i)}, 1000+i*997)
		if got := mustGet(t, ctx, r, fmt.Sprintf("conc-%02d", i)); !bytes.Equal(got, want) {
			t.Fatalf("conc-%02d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
}

func TestDirRemoteContract(t *testing.T) {
	root := filepath.Join(t.TempDir(), "remote", "nested")
	d, err := uploader.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("NewDir did not create %s: %v", root, err)
	}
	runRemoteContract(t, d)
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
	if got, want := d.String(), "dir:"+root; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestNewDirRejectsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := uploader.NewDir(f)
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("NewDir(file) = %v, want a 'not a directory' error", err)
	}
	if _, err := uploader.NewDir(""); err == nil {
		t.Fatal("NewDir(\"\") succeeded")
	}
}

func TestDirRemoteRejectsPathKeys(t *testing.T) {
	d, err := uploader.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"", "a/b", "..", "../x"} {
		if err := d.Put(ctx, key, strings.NewReader("x"), 1); !uploader.IsPermanent(err) {
			t.Errorf("Put(%q) = %v, want a permanent error", key, err)
		}
		if _, err := d.Get(ctx, key); !uploader.IsPermanent(err) {
			t.Errorf("Get(%q) = %v, want a permanent error", key, err)
		}
	}
}

func TestDirRemoteCancelledPut(t *testing.T) {
	d, err := uploader.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Put(ctx, "cancelled", strings.NewReader("data"), 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context = %v, want context.Canceled", err)
	}
	mustHead(t, context.Background(), d, "cancelled", false)
	mustPut(t, context.Background(), d, "present", []byte("data"))
	rc, err := d.Get(ctx, "present")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading with a cancelled context = %v, want context.Canceled", err)
	}
}
