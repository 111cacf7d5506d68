package cli_test

import (
	"os/exec"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestHistoryRecordsSuccessor: an upload that meets a draining daemon
// starts a successor; the history says whose successor it is, and why the
// old one ended.
func TestHistoryRecordsSuccessor(t *testing.T) {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, time.Minute)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	m.writeConfig("drain_timeout_secs = 2\n")
	m.ok("daemon", "start")
	old := m.status().Pid
	m.ok("upload", "--from", batchFile(t, randomFiles(t, t.TempDir(), "stuck", 1)))
	testenv.WaitFor(t, 10*time.Second, "an upload to reach the proxy", func() bool { return m.stats().Queue.InFlight > 0 })
	stop := exec.Command(kacheBin, "daemon", "stop")
	stop.Env = m.environ()
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the daemon to drain", func() bool { return m.status().State == "draining" })
	m.set("KACHE_S3_ENDPOINT=" + srv.Endpoint)
	m.ok("upload", "--from", batchFile(t, randomFiles(t, t.TempDir(), "late", 1)))
	if err := stop.Wait(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	testenv.WaitFor(t, 20*time.Second, "the successor", func() bool {
		return m.run("daemon", "status").code == 0 && m.status().Pid != old
	})

	var gens []history.Generation
	m.decode(m.ok("daemon", "history", "--json", "-n", "2"), &gens)
	if len(gens) != 2 {
		t.Fatalf("history: %d generations, want 2", len(gens))
	}
	next, prev := gens[0], gens[1]
	if next.Start == nil || next.Start.How != history.HowSuccessor || next.Start.Predecessor != old || !next.Running {
		t.Errorf("newest generation %+v: want the running successor of pid %d", next.Start, old)
	}
	if prev.Pid != old || prev.End == nil || prev.End.Reason != "stop" || prev.End.Left == 0 {
		t.Errorf("old generation %+v: want pid %d stopped with uploads left", prev.End, old)
	}
	m.ok("daemon", "stop")
}
