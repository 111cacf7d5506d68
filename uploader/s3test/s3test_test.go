package s3test_test

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// status GETs the server root; a live versitygw answers 403 to an unsigned
// request.
func status(endpoint string) (int, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(endpoint + "/")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestStartStopRestart(t *testing.T) {
	srv := s3test.Start(t)
	if code, err := status(srv.Endpoint); err != nil || code != http.StatusForbidden {
		t.Fatalf("unsigned GET = %d, %v; want 403 from a live server", code, err)
	}
	if fi, err := os.Stat(filepath.Join(srv.Root, srv.Bucket)); err != nil || !fi.IsDir() {
		t.Fatalf("bucket directory missing: %v", err)
	}
	if got, want := srv.ObjectPath("a/b"), filepath.Join(srv.Root, "kache-test", "a", "b"); got != want {
		t.Errorf("ObjectPath = %q, want %q", got, want)
	}
	srv.Stop()
	if _, err := status(srv.Endpoint); err == nil {
		t.Fatal("server still answers after Stop")
	}
	srv.Stop() // stopping twice is harmless
	endpoint := srv.Endpoint
	srv.Restart()
	if srv.Endpoint != endpoint {
		t.Fatalf("Restart moved the server from %s to %s", endpoint, srv.Endpoint)
	}
	if code, err := status(srv.Endpoint); err != nil || code != http.StatusForbidden {
		t.Fatalf("after Restart: %d, %v", code, err)
	}
}

func TestEnvAndConfig(t *testing.T) {
	srv := s3test.Start(t)
	env := srv.Env()
	for _, want := range []string{"AWS_ACCESS_KEY_ID=kacheaccess", "AWS_SECRET_ACCESS_KEY=kachesecret123",
		"AWS_REGION=us-east-1", "KACHE_S3_ENDPOINT=" + srv.Endpoint, "KACHE_S3_BUCKET=kache-test"} {
		if !slices.Contains(env, want) {
			t.Errorf("Env() lacks %s: %v", want, env)
		}
	}
	c := srv.Config()
	if c.Bucket != "kache-test" || c.Endpoint != srv.Endpoint || c.Region != "us-east-1" || c.Concurrency < 1 {
		t.Errorf("Config() = %+v", c)
	}
	srv.SetEnv(t)
	if got := os.Getenv("KACHE_S3_ENDPOINT"); got != srv.Endpoint || !strings.HasPrefix(got, "http://127.0.0.1:") {
		t.Errorf("SetEnv: KACHE_S3_ENDPOINT = %q", got)
	}
}

// TestTwoServers: servers in one test get their own ports and roots.
func TestTwoServers(t *testing.T) {
	a, b := s3test.Start(t), s3test.Start(t)
	if a.Endpoint == b.Endpoint || a.Root == b.Root {
		t.Fatalf("two servers share %s / %s", a.Endpoint, a.Root)
	}
}

// TestServerOutlivesTheStartingThread: a server started from a goroutine
// locked to its thread, which then exits and takes the thread with it (as
// an upload worker does), still serves. The server's death signal follows
// the thread that forked it, so that thread must not be the caller's.
func TestServerOutlivesTheStartingThread(t *testing.T) {
	got := make(chan *s3test.Server)
	go func() {
		runtime.LockOSThread() // exits locked: the runtime ends this thread
		got <- s3test.Start(t)
	}()
	srv := <-got
	// The thread ends as its goroutine returns; a SIGKILL then takes the
	// server within milliseconds. It must keep answering.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, err := status(srv.Endpoint); err != nil || code != http.StatusForbidden {
			t.Fatalf("the server died with the thread that started it: %d, %v", code, err)
		}
	}
}
