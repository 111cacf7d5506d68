package uploader

import (
	"sync"
	"time"
)

// Breaker states, as Stats and status show them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
	// BreakerPaused: the remote refused us for a reason no retry of an
	// entry can fix (credentials, clock skew, missing bucket). Uploads wait
	// and one probe retries on a schedule (DefaultPauseRetry, doubling up
	// to pauseCeiling); Stats.PausedReason says why.
	BreakerPaused = "paused"
)

// DefaultPauseRetry is the first wait of a paused remote before a probe.
const DefaultPauseRetry = 30 * time.Second

// pauseCeiling caps the doubling of the pause's wait, as a multiple of the
// first wait.
const pauseCeiling = 10

// Breaker is a circuit breaker in front of the remote. After threshold
// consecutive transient failures it opens, and callers wait instead of
// hammering a remote that is down; once the cooldown has passed it lets
// exactly one probe through (half-open), whose success closes it and whose
// failure re-opens it for another cooldown.
//
// It never sleeps: Allow says how long to wait and Changed wakes waiters, so
// it runs on an injected clock in tests. Results of calls let through before
// the breaker opened (stragglers) do not move an open or half-open breaker:
// only the probe decides.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time
	// onChange, if set, is called under the breaker's lock on every state
	// change; it must not call the Breaker.
	onChange func(from, to string)

	mu       sync.Mutex
	state    string
	failures int
	openedAt time.Time
	probing  bool
	changed  chan struct{}

	pauseBase time.Duration // first wait of a pause
	pauses    int           // consecutive pauses, for the doubling
	reason    string        // why paused; kept until a probe succeeds
}

// NewBreaker returns a closed breaker. now is the clock (time.Now in
// production, a fake in tests).
func NewBreaker(threshold int, cooldown time.Duration, now func() time.Time) *Breaker {
	if threshold < 1 {
		threshold = 1
	}
	return &Breaker{threshold: threshold, cooldown: cooldown, now: now,
		state: BreakerClosed, changed: make(chan struct{}), pauseBase: DefaultPauseRetry}
}

// Allow asks to make one call. ok true lets it through; probe true marks it
// as the half-open probe, whose outcome must be reported. ok false comes with
// the cooldown left, or 0 while a probe is in flight: wait that long or until
// Changed fires, then ask again.
func (b *Breaker) Allow() (probe, ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerClosed {
		return false, true, 0
	}
	if b.state == BreakerOpen || b.state == BreakerPaused {
		left := b.wait() - b.now().Sub(b.openedAt)
		if left > 0 {
			return false, false, left
		}
		b.set(BreakerHalfOpen)
	}
	if b.probing {
		return false, false, 0
	}
	b.probing = true
	return true, true, 0
}

// Success reports a call that reached the remote and worked.
func (b *Breaker) Success(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		b.failures, b.pauses, b.reason = 0, 0, ""
		b.set(BreakerClosed)
		return
	}
	if b.state == BreakerClosed {
		b.failures = 0
	}
}

// Failure reports a transient failure of the remote.
func (b *Breaker) Failure(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		b.open()
		return
	}
	if b.state != BreakerClosed {
		return
	}
	b.failures++
	if b.failures >= b.threshold {
		b.open()
	}
}

// Pause reports a call the remote refused for a reason of its
// configuration (see PausedError): every caller waits, and a probe retries
// after the pause's wait, which doubles on every failed probe up to
// pauseCeiling times the first. A straggler's pause while already paused
// only refreshes the reason.
func (b *Breaker) Pause(probe bool, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	} else if b.state == BreakerPaused || b.state == BreakerHalfOpen {
		b.reason = reason
		return
	}
	b.pauses++
	b.reason = reason
	b.openedAt = b.now()
	b.failures = 0
	b.set(BreakerPaused)
	b.notify() // a repeated pause changes the wait
}

// PausedReason is why the remote is paused, or "" when it is not (it is
// kept while a probe is in flight after a pause).
func (b *Breaker) PausedReason() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerPaused || b.state == BreakerHalfOpen {
		return b.reason
	}
	return ""
}

// wait is how long the current open or paused state lasts.
func (b *Breaker) wait() time.Duration {
	if b.state != BreakerPaused {
		return b.cooldown
	}
	d := b.pauseBase
	for i := 1; i < b.pauses && d < b.pauseBase*pauseCeiling; i++ {
		d *= 2
	}
	return min(d, b.pauseBase*pauseCeiling)
}

// Release reports a call that says nothing about the remote's health (it was
// cancelled, or failed for a reason of its own). A released probe lets the
// next caller probe.
func (b *Breaker) Release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.notify()
}

// State is "closed", "open" or "half_open".
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Changed returns a channel closed at the next state change or probe
// release. Take it before calling Allow so that no change is missed.
func (b *Breaker) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

func (b *Breaker) open() {
	b.openedAt = b.now()
	b.failures, b.pauses, b.reason = 0, 0, ""
	b.set(BreakerOpen)
}

func (b *Breaker) set(to string) {
	if to == b.state {
		return
	}
	from := b.state
	b.state = to
	b.notify()
	if b.onChange != nil {
		b.onChange(from, to)
	}
}

func (b *Breaker) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}
