package uploader_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// startS3Remote starts versitygw and an S3Remote on it, with the server's
// keys in the environment for the standard credential chain.
func startS3Remote(t *testing.T, prefix string) (*s3test.Server, *uploader.S3Remote) {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	c := srv.Config()
	c.Prefix = prefix
	r, err := uploader.NewS3(context.Background(), c)
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return srv, r
}

func TestS3RemoteContract(t *testing.T) {
	_, r := startS3Remote(t, "")
	runRemoteContract(t, r)
}

func TestS3RemotePrefix(t *testing.T) {
	srv, r := startS3Remote(t, "team/ci-")
	ctx := context.Background()
	mustPut(t, ctx, r, "obj", []byte("prefixed"))
	b, err := os.ReadFile(srv.ObjectPath("team/ci-obj"))
	if err != nil || string(b) != "prefixed" {
		t.Fatalf("object under the prefix: %q, %v", b, err)
	}
	want := "s3://kache-test/team/ci- (" + srv.Endpoint + ")"
	if got := r.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestS3WrongSecretPauses: a wrong secret says nothing about the entry:
// every call is a PausedError, not a permanent one.
func TestS3WrongSecretPauses(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	r, err := uploader.NewS3(context.Background(), srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	err = r.Put(ctx, "k", strings.NewReader("x"), 1)
	if !uploader.IsPaused(err) || uploader.IsPermanent(err) {
		t.Errorf("Put with a wrong secret = %v, want a paused error", err)
	}
	if _, err := r.Head(ctx, "k"); !uploader.IsPaused(err) {
		t.Errorf("Head with a wrong secret = %v, want a paused error", err)
	}
	if _, err := r.Get(ctx, "k"); !uploader.IsPaused(err) {
		t.Errorf("Get with a wrong secret = %v, want a paused error", err)
	}
	err = r.PutNew(ctx, "k", strings.NewReader("x"), 1, sha256hex("x"), nil)
	if !uploader.IsPaused(err) {
		t.Errorf("PutNew with a wrong secret = %v, want a paused error", err)
	}
}

// TestS3MissingBucketPauses: a missing bucket is a configuration problem
// too: paused, never a verdict on the entry.
func TestS3MissingBucketPauses(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	c := srv.Config()
	c.Bucket = "no-such-bucket"
	r, err := uploader.NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Put(context.Background(), "k", strings.NewReader("x"), 1)
	if !uploader.IsPaused(err) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Fatalf("Put to a missing bucket = %v, want a paused NoSuchBucket error", err)
	}
}

// TestS3ClosedPortIsTransient: a server that is down is worth retrying, and
// each attempt fails fast because the SDK's own retries are off.
func TestS3ClosedPortIsTransient(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	c.Endpoint = "http://" + l.Addr().String()
	l.Close()
	r, err := uploader.NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	errs := []error{r.Put(ctx, "k", strings.NewReader("x"), 1)}
	_, err = r.Head(ctx, "k")
	errs = append(errs, err)
	_, err = r.Get(ctx, "k")
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || uploader.IsPermanent(err) {
			t.Errorf("call %d on a closed port = %v, want a transient error", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("three calls on a closed port took %s; the SDK is retrying", d)
	}
}

// TestS3DownThenBack: while the server is stopped calls fail transiently;
// after a restart on the same port and root the same remote works again
// and earlier objects are still there.
func TestS3DownThenBack(t *testing.T) {
	srv, r := startS3Remote(t, "")
	ctx := context.Background()
	mustPut(t, ctx, r, "before", []byte("kept"))
	srv.Stop()
	if err := r.Put(ctx, "during", strings.NewReader("x"), 1); err == nil || uploader.IsPermanent(err) {
		t.Fatalf("Put while down = %v, want a transient error", err)
	}
	srv.Restart()
	mustPut(t, ctx, r, "after", []byte("back"))
	if got := mustGet(t, ctx, r, "before"); string(got) != "kept" {
		t.Fatalf("object put before the restart = %q", got)
	}
}

// TestS3CloseThenReuse: Close ends the connection goroutines (so a stopped
// daemon passes goleak) and the remote stays usable afterwards.
func TestS3CloseThenReuse(t *testing.T) {
	_, r := startS3Remote(t, "")
	ctx := context.Background()
	mustPut(t, ctx, r, "a", []byte("1"))
	if n := connGoroutines(); n == 0 {
		t.Fatal("no HTTP connection goroutine after a Put; the test cannot see connections")
	}
	r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for connGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d HTTP connection goroutines still running 10 s after Close", connGoroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustPut(t, ctx, r, "b", []byte("2"))
	if got := mustGet(t, ctx, r, "b"); !bytes.Equal(got, []byte("2")) {
		t.Fatalf("get after Close = %q", got)
	}
}

func TestNewS3BadConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		c    config.S3
		want string
	}{
		{config.S3{}, "KACHE_S3_BUCKET"},
		{config.S3{Bucket: "b", Endpoint: "127.0.0.1:9000"}, "not a URL"},
		{config.S3{Bucket: "b", Endpoint: "ftp://host"}, "not a URL"},
	} {
		if _, err := uploader.NewS3(ctx, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewS3(%+v) = %v, want an error mentioning %q", tc.c, err, tc.want)
		}
	}
}

func TestNewS3DefaultRegion(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	c := srv.Config()
	c.Region = ""
	r, err := uploader.NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Signing needs a region: a Put that succeeds proves one was set.
	mustPut(t, context.Background(), r, "region", []byte("us-east-1"))
}

// connGoroutines counts the goroutines serving pooled HTTP connections.
func connGoroutines() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "net/http.(*persistConn).readLoop")
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
