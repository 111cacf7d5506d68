package cli_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestUploadE2EHandoffDuringDrain: an upload that reaches a daemon draining
// toward its exit must not wait for the drain (up to 30 s on a build's
// critical path). It returns at once, one successor daemon waits for the
// old one's lock, takes over when it exits and uploads the spool.
func TestUploadE2EHandoffDuringDrain(t *testing.T) {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, time.Minute)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	m.writeConfig("drain_timeout_secs = 3\n")
	stuck := randomFiles(t, t.TempDir(), "stuck", 2)
	m.ok("daemon", "start")
	old := m.status().Pid
	m.ok("upload", "--from", batchFile(t, stuck))
	testenv.WaitFor(t, 10*time.Second, "uploads to reach the proxy", func() bool { return m.stats().Queue.InFlight > 0 })

	stop := exec.Command(kacheBin, "daemon", "stop")
	stop.Env = m.environ()
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop.Wait()
	testenv.WaitFor(t, 10*time.Second, "the daemon to drain", func() bool { return m.status().State == "draining" })

	// Point the successor straight at S3: it inherits the uploading
	// command's environment.
	m.set("KACHE_S3_ENDPOINT=" + srv.Endpoint)
	late := randomFiles(t, t.TempDir(), "late", 3)
	for key, path := range late {
		r := m.ok("upload", "--key", key, path)
		if r.took > time.Second || !strings.Contains(r.out, "successor") {
			t.Fatalf("upload of %s during the drain: want an immediate handoff, got:\n%s", key, r)
		}
	}
	if err := stop.Wait(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	testenv.WaitFor(t, 20*time.Second, "a successor daemon", func() bool {
		if m.run("daemon", "status").code != 0 {
			return false
		}
		st := m.status()
		return st.Pid != old && st.State == "running"
	})
	m.waitSpoolEmpty(30 * time.Second)
	for k, v := range late {
		stuck[k] = v
	}
	inBucket(t, srv, stuck)
	if procs, _ := procid.FindDaemons(m.sock); len(procs) != 1 {
		t.Fatalf("%d daemons serve the socket after the handoff, want 1", len(procs))
	}
	m.ok("daemon", "stop")
}
