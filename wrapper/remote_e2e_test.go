package wrapper_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// kache runs a kache command with the rig's cache dir and extra vars.
func (r *rig) kache(args ...string) (string, error) {
	cmd := exec.Command(kacheBin, args...)
	cmd.Env = append(testenv.Environ(map[string]string{"KACHE_CACHE_DIR": r.cacheDir,
		"XDG_CONFIG_HOME": filepath.Join(r.root, "xdg")}), r.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// daemonPid is the running daemon's pid from its state file, or 0.
func (r *rig) daemonPid() int {
	var st struct{ Pid int }
	b, err := os.ReadFile(filepath.Join(r.cacheDir, "daemon.state.json"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	return st.Pid
}

// TestRemoteE2E: a cold build with an S3 remote, during which the daemon
// is SIGKILLed and the S3 server stopped and started again, succeeds with
// the right output; `kache flush` then confirms every entry in the bucket
// (nothing handed over is lost); a fresh cache dir against the same
// bucket, in another checkout, gets every cacheable crate from the remote
// without starting rustc for it.
func TestRemoteE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("real cargo builds")
	}
	srv := s3test.Start(t)
	a := newRig(t)
	a.env = srv.Env()
	t.Cleanup(func() { a.kache("daemon", "stop") })
	ws := a.workspace("tiny", "tiny")
	a.cargo(ws, true, "build")
	tinyEnded := time.Now()
	var tiny []string
	for _, rec := range a.records() {
		if rec.Outcome == "miss" {
			tiny = append(tiny, rec.Key)
		}
	}

	big := a.workspace("ws", "ws")
	done := make(chan struct{})
	go func() {
		defer close(done)
		faults(t, a, srv)
	}()
	a.cargo(big, true, "build")
	<-done
	if out := a.run(filepath.Join(big, "target", "debug", "app")); len(out) == 0 {
		t.Fatal("no output from the app built under faults")
	}
	srv.Restart()
	recs := a.records()
	misses := counts(recs)["miss"]
	if out, err := a.kache("flush", "--timeout", "2m"); err != nil {
		t.Fatalf("flush after the faults: %v\n%s", err, out)
	}
	for _, rec := range recs {
		if rec.Outcome == "miss" {
			if _, err := os.Stat(srv.ObjectPath(uploader.V2Dir + "/" + rec.Key)); err != nil {
				t.Errorf("entry of %s (%s) lost: not in the bucket after flush", rec.Crate, rec.Key)
			}
		}
	}
	uploadsAfter(t, a, tiny, tinyEnded)
	a.kache("daemon", "stop")

	b := newRig(t)
	b.env = srv.Env()
	t.Cleanup(func() { b.kache("daemon", "stop") })
	other := b.workspace("ws", "other/ws")
	b.kache("daemon", "start")
	b.cargo(other, true, "build")
	n := counts(b.records())
	if n["remote_hit"] != misses || n["miss"] != 0 {
		t.Errorf("fresh cache dir against the filled bucket: %v, want %d remote hits", n, misses)
	}
	if starts := b.compileStarts(); len(starts) > 0 {
		t.Errorf("rustc started for %v on a build served by the remote", starts)
	}
}

// faults SIGKILLs the daemon once it runs, then stops the S3 server for a
// few seconds, while the build goes on.
func faults(t *testing.T, r *rig, srv *s3test.Server) {
	deadline := time.Now().Add(90 * time.Second)
	for r.daemonPid() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if pid := r.daemonPid(); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	} else {
		t.Error("no daemon started during the build")
	}
	// The build goes on without a daemon (the next upload starts one)
	// for a few crates, then without S3.
	base := r.recordCount()
	for r.recordCount() < base+4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	srv.Stop()
}

// recordCount is how many records builds.jsonl holds now.
func (r *rig) recordCount() int {
	b, _ := os.ReadFile(filepath.Join(r.cacheDir, "builds.jsonl"))
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// uploadsAfter checks that the uploads of the given entries began only
// once their cargo build had exited (docs/lifecycle.md#uploads-wait-for-the-build).
func uploadsAfter(t *testing.T, r *rig, keys []string, ended time.Time) {
	t.Helper()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	ups := testenv.UploadStarts(filepath.Join(r.cacheDir, "events.jsonl"), func(k string) bool { return want[k] })
	for _, u := range ups {
		if u.Began.Before(ended) {
			t.Errorf("upload of %s began %v before its cargo build exited", u.Key, ended.Sub(u.Began))
		}
	}
	if len(ups) < len(keys) || len(keys) == 0 {
		t.Errorf("%d uploads recorded for the %d entries of the build", len(ups), len(keys))
	}
}
