package cacheprog_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// defaultGoCache is the go command's own cache of the test process, warm,
// for the reference builds.
func defaultGoCache(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	must(t, err)
	return strings.TrimSpace(string(out))
}

// TestGoBuildThroughKache: `go build` and `go test` of the fixture through
// kache give what the go command's own cache gives (the same program,
// byte for byte, and a passing test); a second run from a fresh GOCACHE
// against the same kache cache dir is all hits, nothing stored again, and
// the test's result comes from the cache.
func TestGoBuildThroughKache(t *testing.T) {
	if testing.Short() {
		t.Skip("real go builds")
	}
	r := newRig(t)
	dir := r.module("mod")
	r.env = []string{"GOCACHE=" + defaultGoCache(t)} // the reference only
	wantOut, wantVerdict := r.buildAndTest(dir, false)
	ref, err := os.ReadFile(filepath.Join(dir, "app"))
	must(t, err)
	r.env = nil

	out, verdict := r.buildAndTest(dir, true)
	if out != wantOut || verdict != wantVerdict || verdict != "ok" {
		t.Fatalf("through kache: %q, test %q; want %q, test %q", out, verdict, wantOut, wantVerdict)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "app")); !bytes.Equal(got, ref) {
		t.Errorf("the program built through kache differs from the one the go command's cache built (%d vs %d bytes)", len(got), len(ref))
	}
	n, cold := r.sessions()
	if n != 2 || cold.Puts == 0 || cold.Misses == 0 {
		t.Fatalf("cold: %d sessions %+v, want 2 with misses and puts", n, cold)
	}

	verdict = r.warmRun(dir)
	n, warm := r.sessions()
	if verdict != "ok" {
		t.Fatalf("warm: test %q", verdict)
	}
	if n != 2 || warm.Misses != 0 || warm.Hits != warm.Gets || warm.Puts != 0 || warm.BytesOut == 0 {
		t.Errorf("warm run from a fresh GOCACHE: %d sessions %+v, want all hits and no puts", n, warm)
	}
}

// TestGoBuildFromRemote: a cache dir fills a versitygw bucket (`kache
// flush` confirms it); a fresh cache dir, in another checkout, with a
// fresh GOCACHE, gets every object from the remote.
func TestGoBuildFromRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("real go builds")
	}
	srv := s3test.Start(t)
	a := newRig(t)
	a.env = srv.Env()
	t.Cleanup(func() { a.kache("daemon", "stop") })
	dir := a.module("mod")
	want, _ := a.buildAndTest(dir, true)
	if out, err := a.kache("flush", "--timeout", "1m"); err != nil {
		t.Fatalf("flush: %v\n%s", err, out)
	}
	a.kache("daemon", "stop")

	b := newRig(t)
	b.env = srv.Env()
	t.Cleanup(func() { b.kache("daemon", "stop") })
	if out, err := b.kache("daemon", "start"); err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	verdict := b.warmRun(dir)
	_, c := b.sessions()
	b.logReasons()
	if verdict != "ok" || c.Misses != 0 || c.RemoteHits == 0 || c.Hits+c.RemoteHits != c.Gets {
		t.Errorf("fresh cache dir against the filled bucket: test %q, %+v; want every get a hit, from the remote", verdict, c)
	}
	if out, _ := b.buildAndTest(dir, true); out != want {
		t.Errorf("built from the remote: %q, want %q", out, want)
	}
}

// TestGoBuildUnderFaults: the daemon SIGKILLed, then the S3 server
// stopped, during a cold `go build` and `go test`: both succeed; once S3
// is back, `kache flush` confirms every entry the build stored (nothing
// handed over is lost).
func TestGoBuildUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("real go builds")
	}
	srv := s3test.Start(t)
	r := newRig(t)
	r.env = srv.Env()
	t.Cleanup(func() { r.kache("daemon", "stop") })
	done := make(chan struct{})
	go func() {
		defer close(done)
		faults(t, r, srv)
	}()
	out, verdict := r.buildAndTest(r.module("mod"), true)
	<-done
	if out != "hello KACHE\n" || verdict != "ok" {
		t.Fatalf("under faults: %q, test %q", out, verdict)
	}
	srv.Restart()
	if out, err := r.kache("flush", "--timeout", "1m"); err != nil {
		t.Fatalf("flush after the faults: %v\n%s", err, out)
	}
	keys := r.goKeys()
	for _, k := range keys {
		if _, err := os.Stat(srv.ObjectPath(uploader.V2Dir + "/" + k)); err != nil {
			t.Errorf("entry %s lost: not in the bucket after flush", k)
		}
	}
	if len(keys) == 0 {
		t.Error("the build stored nothing")
	}
}

// faults SIGKILLs the daemon once an upload started it, then stops the
// S3 server once the build stored 20 more objects.
func faults(t *testing.T, r *rig, srv *s3test.Server) {
	ok := waitUntil(40*time.Second, func() bool { return r.daemonPid() > 0 })
	if !ok {
		t.Error("no daemon started during the build")
		return
	}
	syscall.Kill(r.daemonPid(), syscall.SIGKILL)
	base := len(r.goKeys())
	if !waitUntil(40*time.Second, func() bool { return len(r.goKeys()) >= base+20 }) {
		t.Error("the build stored nothing after the daemon was killed")
	}
	srv.Stop()
}

// waitUntil is testenv.WaitFor for a goroutine that must not fail the
// test itself: it reports whether cond held before the deadline.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
