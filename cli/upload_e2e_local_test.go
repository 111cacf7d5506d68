package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader"
)

// Scenarios that need no S3: bad input, no remote, the directory remote,
// the offline rules and build sessions.

// dirMachine is a machine whose remote is the directory remote.
func dirMachine(t *testing.T, remote string) *machine {
	m := newMachine(t)
	m.set("KACHE_REMOTE_DIR=" + remote)
	return m
}

// TestUploadE2EBadInput: a bad key, a missing path and a path that is
// neither a file nor a directory exit 2 with a clear message, before any
// intent is written or any daemon started.
func TestUploadE2EBadInput(t *testing.T) {
	m := dirMachine(t, t.TempDir())
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, []byte("x"))
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"upload", "--key", "../x", f}, `invalid key "../x"`},
		{[]string{"upload", "--key", "a/b", f}, `contains "/"`},
		{[]string{"upload", "--key", "ok", filepath.Join(t.TempDir(), "missing")}, "no such file or directory"},
		{[]string{"upload", "ok=" + fifo}, "not a regular file or a directory"},
		{[]string{"upload", "not-a-pair"}, "is not KEY=PATH"},
		{[]string{"check", "../x"}, "invalid key"},
	}
	for _, c := range cases {
		r := m.expect(2, c.args...)
		if !strings.Contains(r.err, c.want) {
			t.Errorf("want stderr to contain %q:\n%s", c.want, r)
		}
	}
	if n := m.spool(); n != 0 {
		t.Fatalf("bad input left %d intents", n)
	}
	m.noDaemon("after bad input only")
}

// TestUploadE2ENoRemote: with no remote configured the upload still exits
// 0, warns that the intent is kept, and status shows remote "none".
func TestUploadE2ENoRemote(t *testing.T) {
	m := newMachine(t)
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, []byte("kept"))
	r := m.ok("upload", "--key", "kept", f)
	if !strings.Contains(r.err, "warning") || !strings.Contains(r.err, "kept") || !strings.Contains(r.err, "no remote configured") {
		t.Fatalf("want a warning that the intent is kept for lack of a remote:\n%s", r)
	}
	if m.spool() != 1 {
		t.Fatalf("spool holds %d intents, want 1", m.spool())
	}
	st := m.status()
	if st.Remote != "none" || st.Queue.Spool != 1 {
		t.Fatalf("status: remote %q, spool %d; want none, 1", st.Remote, st.Queue.Spool)
	}
	m.ok("daemon", "stop")
}

// TestUploadE2EVanishedSource: an intent whose file is deleted before a
// daemon with a remote runs it moves to failed/ with the error, and stats
// and status count it; it is not retried.
func TestUploadE2EVanishedSource(t *testing.T) {
	m := newMachine(t) // no remote yet: the intent waits in the spool
	f := filepath.Join(t.TempDir(), "gone")
	writeFile(t, f, []byte("soon gone"))
	m.ok("upload", "--key", "gone", f)
	m.ok("daemon", "stop")
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	m.set("KACHE_REMOTE_DIR=" + t.TempDir())
	m.ok("daemon", "start")
	m.waitFailed(1)
	rec := readFailed(t, m.failed()[0])
	if rec.Key != "gone" || !strings.Contains(rec.Error, "vanished") {
		t.Fatalf("failed record %+v; want key gone and an error saying the source vanished", rec)
	}
	st := m.stats()
	if st.UploadsFailed != 1 || st.Queue.Failed != 1 || st.Queue.Spool != 0 {
		t.Fatalf("stats: %d failed, queue %+v; want 1 failed, 1 failed intent, empty spool", st.UploadsFailed, st.Queue)
	}
	if q := m.status().Queue; q.Failed != 1 {
		t.Fatalf("status queue %+v; want 1 failed", q)
	}
	if r := m.ok("daemon", "status"); !strings.Contains(r.out, "1 failed") {
		t.Fatalf("status does not show the failed upload:\n%s", r)
	}
	m.ok("daemon", "stop")
}

// waitFailed waits until n uploads have failed for good and the queue
// holds nothing else.
func (m *machine) waitFailed(n int) {
	m.t.Helper()
	testenv.WaitFor(m.t, 15*time.Second, "uploads to fail", func() bool {
		st := m.stats()
		return st.UploadsFailed == int64(n) && st.Queue.Spool == 0 && st.Queue.InFlight == 0 && len(m.failed()) == n
	})
}

// readFailed decodes a record in upload-queue/failed/.
func readFailed(t *testing.T, path string) (rec struct{ Key, Path, Error string }) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rec
}

// TestUploadE2EUnreadableSource: a source the daemon cannot read fails
// for good (failed/, not retried forever). As root nothing is unreadable
// by mode, so the root run uses the one thing root cannot archive either:
// a directory holding a named pipe. Without root, a file of mode 000.
func TestUploadE2EUnreadableSource(t *testing.T) {
	m := dirMachine(t, t.TempDir())
	src := t.TempDir()
	want := "unsupported file type"
	if os.Geteuid() == 0 {
		if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		writeFile(t, filepath.Join(src, "secret"), []byte("x"))
		if err := os.Chmod(filepath.Join(src, "secret"), 0); err != nil {
			t.Fatal(err)
		}
		want = "permission denied"
	}
	m.ok("upload", "--key", "unreadable", src)
	m.waitFailed(1)
	if rec := readFailed(t, m.failed()[0]); !strings.Contains(rec.Error, want) {
		t.Fatalf("failed record error %q; want it to say %q", rec.Error, want)
	}
	if st := m.stats(); st.UploadsFailed != 1 || st.Queue.Spool != 0 {
		t.Fatalf("stats %+v; want 1 failed, empty spool", st)
	}
	m.ok("daemon", "stop")
}

// TestUploadE2EDirRemoteTwoMachines: machine A uploads to a shared
// directory remote; machine B, with its own cache, finds the entries with
// `check` and gets the same bytes. A's events.jsonl records the uploads.
func TestUploadE2EDirRemoteTwoMachines(t *testing.T) {
	remote := t.TempDir()
	a, b := dirMachine(t, remote), dirMachine(t, remote)
	es := randomFiles(t, t.TempDir(), "shared", 3)
	tree := makeTree(t, filepath.Join(t.TempDir(), "tree"), 7)
	var args []string
	for k, p := range es {
		args = append(args, k+"="+p)
	}
	a.ok(append([]string{"upload"}, args...)...)
	a.ok("upload", "--key", "shared-tree", tree)
	a.waitSpoolEmpty(15 * time.Second)
	a.ok("daemon", "stop")
	b.ok("daemon", "start")
	for k, p := range es {
		r := b.ok("check", "--deadline", "5s", k)
		sameBytes(t, "check on B", strings.TrimSpace(r.out), p)
	}
	b.ok("check", "shared-tree")
	sameTree(t, filepath.Join(b.paths().StoreDir(), "shared-tree"), tree)
	b.expect(1, "check", "never-uploaded")
	if st := b.stats(); st.RemoteHits != 4 || st.RemoteMisses != 1 || st.Downloads != 4 {
		t.Fatalf("B's stats: %+v; want 4 hits, 1 miss, 4 downloads", st)
	}
	if done := a.eventKeys(eventlog.UploadDone); len(done) != 4 || done["shared-tree"] != 1 {
		t.Fatalf("A's events.jsonl has upload_done for %v; want the 4 entries once each", done)
	}
	b.ok("daemon", "stop")
}

// TestUploadE2EOffline: with no daemon, check misses at once and prefetch
// is skipped, neither starting one; upload starts one and completes.
func TestUploadE2EOffline(t *testing.T) {
	remote := t.TempDir()
	m := dirMachine(t, remote)
	r := m.expect(1, "check", "some-key")
	if r.took > time.Second || !strings.Contains(r.err, "miss") {
		t.Fatalf("offline check: want an immediate miss with the reason:\n%s", r)
	}
	m.noDaemon("after an offline check")
	r = m.ok("prefetch", "some-key", "other-key")
	if !strings.Contains(r.err, "prefetch skipped: daemon offline") {
		t.Fatalf("offline prefetch: want a skipped message:\n%s", r)
	}
	m.noDaemon("after an offline prefetch")
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, []byte("auto-started"))
	r = m.ok("upload", "--key", "auto", f)
	if !strings.Contains(r.out, "queued 1 upload(s)") {
		t.Fatalf("upload with no daemon:\n%s", r)
	}
	r = m.ok("upload", "twice="+f, "twice="+f)
	if !strings.Contains(r.out, "queued 2 upload(s)") {
		t.Fatalf("a key given twice in one call:\n%s", r)
	}
	m.waitSpoolEmpty(15 * time.Second)
	sameDirEntry(t, remote, "auto", f)
	sameDirEntry(t, remote, "twice", f)
	m.ok("daemon", "stop")
}

// TestUploadE2EBuildStarted: build-started is counted in stats.
func TestUploadE2EBuildStarted(t *testing.T) {
	m := dirMachine(t, t.TempDir())
	r := m.ok("build-started", "--session", "s1")
	if !strings.Contains(r.err, "skipped") {
		t.Fatalf("build-started with no daemon should be skipped:\n%s", r)
	}
	m.ok("daemon", "start")
	m.ok("build-started", "--session", "s1")
	st := m.stats()
	if st.Builds != 1 || st.LastBuildSession != "s1" || st.LastBuildAt == nil {
		t.Fatalf("stats after one build: builds %d, session %q, at %v", st.Builds, st.LastBuildSession, st.LastBuildAt)
	}
	m.ok("daemon", "stop")
}

// sameDirEntry downloads entry key from the directory remote at root and
// compares it with the file src.
func sameDirEntry(t *testing.T, root, key, src string) {
	t.Helper()
	r, err := uploader.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), key)
	if _, found, err := uploader.GetEntry(context.Background(), r, key, dest); !found || err != nil {
		t.Fatalf("entry %s on %s: found %v, %v", key, root, found, err)
	}
	sameBytes(t, "uploaded entry "+key, dest, src)
}
