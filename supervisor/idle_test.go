package supervisor

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestIdleVerdict(t *testing.T) {
	now := time.Unix(1000, 0)
	const timeout = 10 * time.Second
	cases := []struct {
		name     string
		deadline time.Time
		free     bool
		exit     bool
		wait     time.Duration
	}{
		{"deadline passed", now.Add(-time.Millisecond), true, true, 0},
		{"deadline now", now, true, true, 0},
		{"time left", now.Add(3 * time.Second), true, false, 3 * time.Second},
		{"work holds it off", now.Add(-time.Hour), false, false, busyRecheck},
	}
	for _, c := range cases {
		exit, wait := idleVerdict(now, c.deadline, c.free, timeout)
		if exit != c.exit || wait != c.wait {
			t.Errorf("%s: idleVerdict = %v, %s; want %v, %s", c.name, exit, wait, c.exit, c.wait)
		}
	}
	if _, wait := idleVerdict(now, now, false, 100*time.Millisecond); wait != 100*time.Millisecond {
		t.Errorf("held with a timeout under busyRecheck: wait %s, want the timeout", wait)
	}
}

// The idle timer fires exactly when armed for, in virtual time: the exit
// comes at the deadline, not a polling interval later; re-arming moves it;
// a zero timeout never fires.
func TestIdleTimerFiresAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		it := newIdleTimer(600 * time.Second)
		defer it.stop()
		at := <-it.C()
		if got := at.Sub(start); got != 600*time.Second {
			t.Errorf("fired after %s, want exactly 600s", got)
		}
		it.reset(7 * time.Second)
		at2 := <-it.C()
		if got := at2.Sub(at); got != 7*time.Second {
			t.Errorf("re-armed timer fired after %s, want 7s", got)
		}
		off := newIdleTimer(0)
		select {
		case <-off.C():
			t.Error("a disabled idle timer fired")
		case <-time.After(24 * time.Hour):
		}
	})
}

// idleSlack bounds how late, in wall-clock time, the in-process daemon
// tests accept an idle exit: the exactness of the deadline is checked in
// virtual time above (TestIdleTimerFiresAtTheDeadline, TestIdleVerdict);
// these only check the wiring, on a machine that may be loaded.
const idleSlack = 5 * time.Second
