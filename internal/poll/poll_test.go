package poll

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when a waiter asks it to wait: After moves the
// time forward by d and fires at once, so a wait of minutes takes none.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

func TestUntilHolds(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	n := 0
	err := Until(context.Background(), c, 50*time.Millisecond, time.Minute, func() bool { n++; return n == 4 })
	if err != nil || n != 4 {
		t.Fatalf("Until = %v after %d calls, want nil after 4", err, n)
	}
	if got := c.Now().Sub(start); got != 150*time.Millisecond {
		t.Errorf("waited %s, want 3 intervals of 50 ms", got)
	}
}

func TestUntilTimesOut(t *testing.T) {
	c := newFakeClock()
	start := c.Now()
	err := Until(context.Background(), c, time.Second, 10*time.Second, func() bool { return false })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Until = %v, want ErrTimeout", err)
	}
	if got := c.Now().Sub(start); got != 10*time.Second {
		t.Errorf("gave up after %s, want the 10 s limit", got)
	}
}

func TestUntilContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Until(ctx, Real, time.Hour, Forever, func() bool { return false })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Until = %v, want the context's error", err)
	}
}

// TestUntilZeroLooksOnce: a limit of 0 is no wait, not no limit.
func TestUntilZeroLooksOnce(t *testing.T) {
	n := 0
	err := Until(context.Background(), newFakeClock(), time.Second, 0, func() bool { n++; return false })
	if !errors.Is(err, ErrTimeout) || n != 1 {
		t.Fatalf("Until(limit 0) = %v after %d looks, want ErrTimeout after 1", err, n)
	}
}
