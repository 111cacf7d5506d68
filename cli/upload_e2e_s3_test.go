package cli_test

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// s3Machine is a machine whose remote is the versitygw server.
func s3Machine(t *testing.T, srv *s3test.Server) *machine {
	m := newMachine(t)
	m.set(srv.Env()...)
	return m
}

// inBucket fails the test unless every entry is in the bucket (its v2
// object present) with its bytes equal to the source.
func inBucket(t *testing.T, srv *s3test.Server, es entries) {
	t.Helper()
	for key, src := range es {
		obj := srv.ObjectPath(uploader.V2Dir + "/" + key)
		if len(globs(t, obj)) != 1 {
			t.Fatalf("%s: no object in the bucket", key)
		}
		sameBytes(t, "object "+key, obj, src)
	}
}

var drainedRE = regexp.MustCompile(`drained (\d+) uploads, (\d+) left for the next start`)

// drainReport parses the last line of `kache daemon stop`.
func drainReport(t *testing.T, r result) (drained, left int) {
	t.Helper()
	m := drainedRE.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("stop does not report its drain:\n%s", r)
	}
	drained, _ = strconv.Atoi(m[1])
	left, _ = strconv.Atoi(m[2])
	return drained, left
}

// TestUploadE2EBatchThenStop: 500 entries in one `upload --from` call, then
// `daemon stop` at once: the drain finishes them all, stop says so, and
// every object is in the bucket with its bytes; events.jsonl has them all.
func TestUploadE2EBatchThenStop(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	es := randomFiles(t, t.TempDir(), "batch", 500)
	m.ok("daemon", "start")
	r := m.ok("upload", "--from", batchFile(t, es))
	if !strings.Contains(r.out, "queued 500 upload(s)") {
		t.Fatalf("want all 500 queued:\n%s", r)
	}
	stop := m.ok("daemon", "stop")
	drained, left := drainReport(t, stop)
	if left != 0 || drained == 0 || !strings.Contains(stop.out, "stopping: draining") {
		t.Fatalf("want a drain announced, then reported with 0 left:\n%s\n%s", stop, m.logTail())
	}
	m.waitGone()
	if n := m.spool(); n != 0 {
		t.Fatalf("spool holds %d intents after the drain", n)
	}
	inBucket(t, srv, es)
	if done := m.eventKeys(uploader.EventUploadDone); len(done) != len(es) {
		t.Fatalf("events.jsonl has upload_done for %d keys, want %d", len(done), len(es))
	}
}

// TestUploadE2EKill9MidUpload: SIGKILL the daemon while some uploads are
// done and others pending; the next daemon replays the spool and every
// object ends up present and intact.
func TestUploadE2EKill9MidUpload(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_CONCURRENCY=2") // slow enough to catch it mid-way
	es := randomFiles(t, t.TempDir(), "kill", 300)
	m.ok("daemon", "start")
	pid := m.status().Pid
	m.ok("upload", "--from", batchFile(t, es))
	testenv.WaitFor(t, 30*time.Second, "some uploads done, many pending", func() bool {
		st := m.stats()
		return st.UploadsCompleted >= 10 && st.Queue.Spool >= 50
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the killed daemon to release its lock", func() bool { return !m.daemonUp() })
	pending := m.spool()
	if pending == 0 || pending == len(es) {
		t.Fatalf("after kill -9 the spool holds %d of %d intents; want some done, some left", pending, len(es))
	}
	m.set("KACHE_S3_CONCURRENCY=")
	m.ok("daemon", "start")
	m.waitSpoolEmpty(60 * time.Second)
	inBucket(t, srv, es)
	if f := m.failed(); len(f) != 0 {
		t.Fatalf("failed intents after replay: %v", f)
	}
	m.ok("daemon", "stop")
}

// TestUploadE2ES3Outage: with S3 down, uploads are accepted and kept,
// jobs retry, the breaker opens, and the daemon answers status quickly all
// along; once S3 is back, everything completes and nothing failed.
func TestUploadE2ES3Outage(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	es := randomFiles(t, t.TempDir(), "outage", 20)
	m.ok("daemon", "start")
	srv.Stop()
	m.ok("upload", "--from", batchFile(t, es))
	testenv.WaitFor(t, 20*time.Second, "the breaker to open", func() bool {
		return m.stats().Queue.Breaker == "open"
	})
	for i := range 3 {
		r := m.ok("daemon", "status")
		if r.took > 2*time.Second {
			t.Fatalf("status %d took %s while S3 was down", i, r.took)
		}
		st := m.status()
		if st.State != "running" || st.Queue.Spool != len(es) || st.Queue.Failed != 0 || st.Queue.Breaker == "closed" {
			t.Fatalf("status while S3 is down: state %s, queue %+v; want running, %d in spool, 0 failed, breaker not closed", st.State, st.Queue, len(es))
		}
	}
	if st := m.stats(); st.UploadsCompleted != 0 || st.UploadsFailed != 0 {
		t.Fatalf("with S3 down: %d completed, %d failed; want 0, 0", st.UploadsCompleted, st.UploadsFailed)
	}
	if retried := m.eventKeys(uploader.EventUploadRetry); len(retried) == 0 {
		t.Fatal("events.jsonl has no upload_retry while S3 was down; want the jobs to retry")
	}
	srv.Restart()
	st := m.waitSpoolEmpty(45 * time.Second)
	if st.UploadsCompleted != int64(len(es)) || st.UploadsFailed != 0 || st.Queue.Breaker != "closed" {
		t.Fatalf("after S3 came back: %+v", st)
	}
	inBucket(t, srv, es)
	if f := m.failed(); len(f) != 0 {
		t.Fatalf("failed intents: %v", f)
	}
	m.ok("daemon", "stop")
}

// TestUploadE2EDrainCap: behind a proxy that holds every request for a
// minute, no upload can finish; `daemon stop` returns at the 2 s drain cap
// and reports the intents left; the next daemon, talking to S3 directly,
// completes them.
func TestUploadE2EDrainCap(t *testing.T) {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, time.Minute)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	m.writeConfig("drain_timeout_secs = 2\n")
	es := randomFiles(t, t.TempDir(), "cap", 40)
	m.ok("daemon", "start")
	m.ok("upload", "--from", batchFile(t, es))
	testenv.WaitFor(t, 10*time.Second, "uploads to reach the proxy", func() bool { return m.stats().Queue.InFlight > 0 })
	stop := m.ok("daemon", "stop")
	drained, left := drainReport(t, stop)
	if stop.took < 2*time.Second || stop.took > 8*time.Second {
		t.Fatalf("stop took %s; want the 2 s drain cap plus a margin:\n%s", stop.took, stop)
	}
	if drained != 0 || left != len(es) || m.spool() != len(es) {
		t.Fatalf("want 0 drained, %d left, %d in the spool; got %d, %d, %d:\n%s", len(es), len(es), drained, left, m.spool(), stop)
	}
	if !strings.Contains(stop.out, fmt.Sprintf("draining %d uploads", len(es))) {
		t.Fatalf("stop does not announce the drain:\n%s", stop)
	}
	m.waitGone()
	m.set("KACHE_S3_ENDPOINT=" + srv.Endpoint)
	m.ok("daemon", "start")
	m.waitSpoolEmpty(30 * time.Second)
	inBucket(t, srv, es)
	m.ok("daemon", "stop")
}

// makeTree writes a small directory entry: nested files (one executable,
// one of random bytes), an empty directory and a relative symlink.
func makeTree(t *testing.T, root string, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	blob := make([]byte, 20<<10)
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	writeFile(t, filepath.Join(root, "README"), fmt.Appendf(nil, "tree %d\n", seed))
	writeFile(t, filepath.Join(root, "sub", "blob.bin"), blob)
	writeFile(t, filepath.Join(root, "sub", "deeper", "run.sh"), []byte("#!/bin/sh\necho hi\n"))
	if err := os.Chmod(filepath.Join(root, "sub", "deeper", "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/blob.bin", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	return root
}

// treeOf describes a directory tree: relative path -> kind, mode and
// content (or link target), for comparing two trees.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(data)
		}
		if rel != "." {
			out[rel] = desc
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// sameTree fails the test unless the trees hold the same paths, modes and
// contents.
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	g, w := treeOf(t, got), treeOf(t, want)
	for rel, desc := range w {
		if g[rel] != desc {
			t.Errorf("%s: %s is %.60q, want %.60q", got, rel, g[rel], desc)
		}
	}
	for rel := range g {
		if _, ok := w[rel]; !ok {
			t.Errorf("%s: unexpected %s", got, rel)
		}
	}
}

// corruptRE matches the ways a corrupt download is reported: the
// manifest check (ErrCorrupt), the zstd frame checksum, or the CRC32 that
// versitygw returns and the AWS SDK checks.
var corruptRE = regexp.MustCompile(`entry failed verification|CRC check failed|checksum did not match`)

// TestUploadE2EDirRoundTrip: directory entries go up as archives and come
// back byte-identical through `check` (after a daemon restart, with the
// store emptied) and `prefetch`; an archive swapped on the server fails
// verification, so check misses and the store holds nothing half-written.
func TestUploadE2EDirRoundTrip(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	src := t.TempDir()
	trees := map[string]string{}
	for i, key := range []string{"tree-a", "tree-b", "tree-c", "tree-d"} {
		trees[key] = makeTree(t, filepath.Join(src, key), uint64(i+1))
		m.ok("upload", "--key", key, trees[key])
	}
	m.waitSpoolEmpty(30 * time.Second)
	m.ok("daemon", "stop")
	if err := os.RemoveAll(m.paths().StoreDir()); err != nil {
		t.Fatal(err)
	}
	m.ok("daemon", "start")

	r := m.ok("check", "tree-a")
	store := filepath.Join(m.paths().StoreDir(), "tree-a")
	if strings.TrimSpace(r.out) != store {
		t.Fatalf("check prints %q, want the store path %s", r.out, store)
	}
	sameTree(t, store, trees["tree-a"])

	m.ok("prefetch", "tree-b")
	testenv.WaitFor(t, 15*time.Second, "prefetch of tree-b", func() bool { return m.stats().Downloads >= 2 })
	sameTree(t, filepath.Join(m.paths().StoreDir(), "tree-b"), trees["tree-b"])

	// Flip bytes in the middle of tree-c's archive (same size), and swap
	// tree-d's for another entry's (a valid archive, the wrong content).
	corrupt(t, srv.ObjectPath(uploader.V2Dir+"/tree-c"))
	data, err := os.ReadFile(srv.ObjectPath(uploader.V2Dir + "/tree-a"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, srv.ObjectPath(uploader.V2Dir+"/tree-d"), data)
	for _, key := range []string{"tree-c", "tree-d"} {
		r = m.expect(1, "check", key)
		if !corruptRE.MatchString(r.err) {
			t.Errorf("check of a corrupt entry does not say it is corrupt:\n%s", r)
		}
	}
	names, err := os.ReadDir(m.paths().StoreDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() != "tree-a" && n.Name() != "tree-b" {
			t.Errorf("store holds %s after a failed download", n.Name())
		}
	}
	m.ok("daemon", "stop")
}

// corrupt inverts 16 bytes in the middle of the file at path.
func corrupt(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 2; i < len(data)/2+16 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	writeFile(t, path, data)
}

// TestStopRemoteUnreachable (issue 16, defect 10): with the remote down,
// the breaker open and no upload talking to it, `kache daemon stop` ends
// the drain at once instead of waiting its 30 s cap, says so, and leaves
// every intent in the spool.
func TestStopRemoteUnreachable(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	srv.Stop()
	m.ok("upload", "--from", batchFile(t, randomFiles(t, t.TempDir(), "down", 3)))
	testenv.WaitFor(t, 30*time.Second, "the breaker to open", func() bool {
		return m.status().Queue.Breaker == uploader.BreakerOpen
	})
	r := m.ok("daemon", "stop")
	if r.took > 10*time.Second || !strings.Contains(r.out, "the remote is unreachable") {
		t.Fatalf("stop with the remote down took %s (the drain cap is 30 s), want it at once and said:\n%s", r.took, r)
	}
	if n := m.spool(); n != 3 {
		t.Fatalf("spool holds %d intents after the stop, want 3", n)
	}
}
