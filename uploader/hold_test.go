package uploader

import (
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// build starts a real process standing for cargo or the go command; the
// returned func ends it.
func build(t *testing.T) (int, func()) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	end := func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-done
		})
	}
	t.Cleanup(end)
	return cmd.Process.Pid, end
}

// TestUploadsWaitForTheBuild: an entry a running build hands over stays
// queued, no upload started, while the build runs; once it exits the
// upload goes, within the hold's poll.
func TestUploadsWaitForTheBuild(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	pid, end := build(t)
	p.HoldFor(pid)
	e := f.entry(t, "held-1", 4096)
	if _, err := p.Enqueue([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	if got := p.WaitingForBuilds(); len(got) != 1 || got[0] != pid {
		t.Fatalf("WaitingForBuilds = %v, want [%d]", got, pid)
	}
	// Several polls of the hold pass with the build alive: still queued.
	deadline := time.Now().Add(3 * holdPoll)
	for time.Now().Before(deadline) {
		if s := p.Stats(); s.InFlight != 0 || s.UploadsCompleted != 0 || s.Queued != 1 {
			t.Fatalf("an upload started while its build runs: %+v", s)
		}
		time.Sleep(holdPoll / 4)
	}
	end()
	testenv.WaitFor(t, 10*time.Second, "the upload once the build ended", idle(p, f.spool))
	if s := p.Stats(); s.UploadsCompleted != 1 {
		t.Errorf("after the build ended: %+v, want 1 upload completed", s)
	}
	if got := p.WaitingForBuilds(); got != nil {
		t.Errorf("WaitingForBuilds after the build = %v", got)
	}
}

// TestDrainNeverWaitsForABuild: a stop while the build still runs uploads
// what it can within the drain, as always.
func TestDrainNeverWaitsForABuild(t *testing.T) {
	f := newPoolFixture(t)
	p := NewPool(f.options(t, f.remote))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	pid, _ := build(t)
	p.HoldFor(pid)
	if _, err := p.Enqueue([]Entry{f.entry(t, "held-2", 4096)}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := p.Drain(10 * time.Second)
	if r.Drained != 1 || r.Left != 0 {
		t.Errorf("drain with the build running: %+v, want 1 drained, 0 left", r)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the drain took %v: it waited for the build", took)
	}
}

// TestHoldEndsAfterMax: a build longer than the longest hold shares the
// machine with its uploads from then on, and is not held for again.
func TestHoldEndsAfterMax(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	p.hold.max = 3 * holdPoll
	pid, _ := build(t)
	p.HoldFor(pid)
	if _, err := p.Enqueue([]Entry{f.entry(t, "held-3", 4096)}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the upload after the longest hold", idle(p, f.spool))
	p.HoldFor(pid)
	if got := p.WaitingForBuilds(); got != nil {
		t.Errorf("the same build held for again after its longest hold: %v", got)
	}
}

// TestHoldIgnoresWhatIsNotARunningBuild: a pid that does not run, or that
// now names another process than the one first seen, holds nothing.
func TestHoldIgnoresWhatIsNotARunningBuild(t *testing.T) {
	f := newPoolFixture(t)
	p, _ := startPool(t, f.options(t, f.remote))
	pid, end := build(t)
	end()
	p.HoldFor(pid)
	p.HoldFor(0)
	if got := p.WaitingForBuilds(); got != nil {
		t.Errorf("held for an exited build: %v", got)
	}
	live, _ := build(t)
	info, err := procid.Inspect(live)
	if err != nil {
		t.Fatal(err)
	}
	if !buildAlive(live, info.StartTime) || buildAlive(live, info.StartTime+1) {
		t.Error("buildAlive must tell the build from another process with its pid")
	}
}
