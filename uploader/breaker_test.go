package uploader

import (
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBreaker(threshold int, cooldown time.Duration) (*Breaker, *fakeClock, *[]string) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := NewBreaker(threshold, cooldown, clk.now)
	var changes []string
	b.onChange = func(from, to string) { changes = append(changes, from+">"+to) }
	return b, clk, &changes
}

func mustAllow(t *testing.T, b *Breaker, wantProbe bool) {
	t.Helper()
	probe, ok, wait := b.Allow()
	if !ok || probe != wantProbe {
		t.Fatalf("Allow() = probe %v ok %v wait %v, want probe %v ok true (state %s)", probe, ok, wait, wantProbe, b.State())
	}
}

func mustRefuse(t *testing.T, b *Breaker, wantWait time.Duration) {
	t.Helper()
	probe, ok, wait := b.Allow()
	if ok || probe || wait != wantWait {
		t.Fatalf("Allow() = probe %v ok %v wait %v, want refused with wait %v (state %s)", probe, ok, wait, wantWait, b.State())
	}
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	b, clk, _ := newTestBreaker(3, 10*time.Second)
	for range 2 {
		mustAllow(t, b, false)
		b.Failure(false)
	}
	b.Success(false) // a success breaks the run of failures
	for range 2 {
		b.Failure(false)
	}
	if got := b.State(); got != BreakerClosed {
		t.Fatalf("after 2 consecutive failures: %s, want closed", got)
	}
	b.Failure(false)
	if got := b.State(); got != BreakerOpen {
		t.Fatalf("after 3 consecutive failures: %s, want open", got)
	}
	mustRefuse(t, b, 10*time.Second)
	clk.advance(4 * time.Second)
	mustRefuse(t, b, 6*time.Second)
}

func TestBreakerHalfOpenLetsOneProbeThrough(t *testing.T) {
	b, clk, changes := newTestBreaker(1, 10*time.Second)
	b.Failure(false)
	clk.advance(10 * time.Second)
	changed := b.Changed()
	mustAllow(t, b, true)
	if got := b.State(); got != BreakerHalfOpen {
		t.Fatalf("state after cooldown = %s, want half_open", got)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire on open -> half_open")
	}
	mustRefuse(t, b, 0) // one probe at a time
	changed = b.Changed()
	b.Success(true)
	<-changed
	if got := b.State(); got != BreakerClosed {
		t.Fatalf("after a successful probe: %s, want closed", got)
	}
	mustAllow(t, b, false)
	want := []string{"closed>open", "open>half_open", "half_open>closed"}
	if len(*changes) != len(want) {
		t.Fatalf("changes = %v, want %v", *changes, want)
	}
	for i := range want {
		if (*changes)[i] != want[i] {
			t.Fatalf("changes = %v, want %v", *changes, want)
		}
	}
}

func TestBreakerFailedProbeReopensForAFullCooldown(t *testing.T) {
	b, clk, _ := newTestBreaker(2, 5*time.Second)
	b.Failure(false)
	b.Failure(false)
	clk.advance(7 * time.Second)
	mustAllow(t, b, true)
	b.Failure(false) // a straggler from before the open: ignored
	if got := b.State(); got != BreakerHalfOpen {
		t.Fatalf("straggler failure moved the breaker to %s", got)
	}
	b.Failure(true)
	if got := b.State(); got != BreakerOpen {
		t.Fatalf("after a failed probe: %s, want open", got)
	}
	mustRefuse(t, b, 5*time.Second) // counted from the probe's failure
	b.Success(false)                // a straggler success does not close it either
	mustRefuse(t, b, 5*time.Second)
}

func TestBreakerReleasedProbeLetsAnotherProbe(t *testing.T) {
	b, clk, _ := newTestBreaker(1, time.Second)
	b.Failure(false)
	clk.advance(time.Second)
	mustAllow(t, b, true)
	mustRefuse(t, b, 0)
	changed := b.Changed()
	b.Release(true) // e.g. the probe's job was cancelled
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire when the probe was released")
	}
	mustAllow(t, b, true)
	if got := b.State(); got != BreakerHalfOpen {
		t.Fatalf("state = %s, want half_open", got)
	}
}

// TestBreakerPauseProbesOnADoublingSchedule: a pause holds every caller for
// the pause's wait, whatever the failure threshold; each failed probe
// doubles the wait up to the ceiling; a successful probe closes it and
// clears the reason, which stays visible while the probe is in flight.
func TestBreakerPauseProbesOnADoublingSchedule(t *testing.T) {
	b, clk, changes := newTestBreaker(5, 10*time.Second)
	b.pauseBase = 30 * time.Second
	mustAllow(t, b, false)
	b.Pause(false, "403 SignatureDoesNotMatch")
	if b.State() != BreakerPaused || b.PausedReason() != "403 SignatureDoesNotMatch" {
		t.Fatalf("after a pause: %s %q", b.State(), b.PausedReason())
	}
	b.Pause(false, "403 again") // a straggler does not restart the wait
	clk.advance(10 * time.Second)
	mustRefuse(t, b, 20*time.Second)
	want := 30 * time.Second
	for range 6 {
		clk.advance(want)
		mustAllow(t, b, true)
		if b.PausedReason() == "" {
			t.Fatal("the reason vanished while the probe is in flight")
		}
		b.Pause(true, "403 still")
		want = min(2*want, 30*time.Second*pauseCeiling)
		mustRefuse(t, b, want)
	}
	if want != 300*time.Second {
		t.Fatalf("the wait reached %v, want the 5 min ceiling", want)
	}
	clk.advance(want)
	mustAllow(t, b, true)
	b.Success(true)
	if b.State() != BreakerClosed || b.PausedReason() != "" {
		t.Fatalf("after a good probe: %s %q", b.State(), b.PausedReason())
	}
	if (*changes)[0] != "closed>paused" {
		t.Fatalf("changes = %v", *changes)
	}
}
