// Package poll is kache's one "wait until" loop: every wait that polls a
// condition (a daemon to answer, a lock to fall free, a process to exit, a
// drain to end, an installation to settle) is written with Until, on an
// injected Clock, so the waits are tested with a fake clock.
package poll

import (
	"context"
	"errors"
	"time"
)

// Clock is the time a wait runs on. Real is the wall clock; tests pass a
// fake one so that waits run without sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ErrTimeout is returned by Until when limit passes before cond holds.
var ErrTimeout = errors.New("timed out")

// Forever is a limit that never passes: the wait ends with cond or ctx.
const Forever time.Duration = 1<<63 - 1

// Until calls cond, then again every `every`, until it returns true (nil),
// ctx ends (ctx's error) or limit passes on clock (ErrTimeout). A limit of
// 0 or less looks once; Forever waits as long as ctx allows. Each wait
// differs only in what it waits for, how often it looks, and for how long.
func Until(ctx context.Context, clock Clock, every, limit time.Duration, cond func() bool) error {
	start := clock.Now()
	for {
		if cond() {
			return nil
		}
		if limit != Forever && clock.Now().Sub(start) >= limit {
			return ErrTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clock.After(every):
		}
	}
}
