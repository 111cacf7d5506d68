package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/statefile"
)

// The crash-loop breaker: after autostartLimit failed auto-starts within
// autostartWindow, clients stop auto-starting for autostartCooldown. It
// lives in a file beside the socket because every wrapper is a separate
// process; a lost update under a race only delays the breaker by one try.
const (
	autostartLimit    = 3
	autostartWindow   = time.Minute
	autostartCooldown = 2 * time.Minute
)

// autostartNote is the breaker's file, and what status shows of it.
type autostartNote struct {
	Failures  []time.Time `json:"failures,omitempty"`
	OpenUntil *time.Time  `json:"open_until,omitempty"`
	LastError string      `json:"last_error,omitempty"`
	Note      string      `json:"note,omitempty"`
}

type autostartBreaker struct {
	path    string
	now     func() time.Time
	logHint func() string // the daemon log's name and last lines
}

func newAutostartBreaker(p config.Paths) *autostartBreaker {
	return &autostartBreaker{path: p.ClientBreakerFile(), now: time.Now, logHint: func() string { return daemonLogHint(p) }}
}

func (b *autostartBreaker) load() autostartNote {
	var n autostartNote
	_ = statefile.ReadJSON(b.path, &n) // missing or corrupt: closed
	return n
}

func (b *autostartBreaker) save(n autostartNote) {
	_ = statefile.WriteJSON(b.path, n) // unique temp name: wrappers run side by side
}

// Allow refuses while the breaker is open, saying until when and why.
func (b *autostartBreaker) Allow() (bool, string) {
	n := b.load()
	if n.OpenUntil != nil && b.now().Before(*n.OpenUntil) {
		return false, fmt.Sprintf("auto-start paused until %s after %d failed starts (last: %s); fix the cause, then run `kache daemon start` to try now%s",
			n.OpenUntil.Local().Format(time.TimeOnly), autostartLimit, n.LastError, b.logHint())
	}
	return true, ""
}

// Record clears the breaker on success and counts a failure otherwise.
func (b *autostartBreaker) Record(err error) {
	if err == nil {
		if _, statErr := os.Stat(b.path); statErr == nil {
			_ = os.Remove(b.path)
		}
		return
	}
	n, now := b.load(), b.now()
	kept := n.Failures[:0]
	for _, t := range n.Failures {
		if now.Sub(t) < autostartWindow {
			kept = append(kept, t)
		}
	}
	n.Failures, n.LastError = append(kept, now), err.Error()
	if len(n.Failures) >= autostartLimit {
		until := now.Add(autostartCooldown)
		n.OpenUntil, n.Failures = &until, nil
	}
	b.save(n)
}

// readAutostart is the breaker's state for status, or nil when closed.
func readAutostart(p config.Paths) *autostartNote {
	b := newAutostartBreaker(p)
	b.logHint = func() string { return "" } // status shows the log itself
	n := b.load()
	if ok, why := b.Allow(); !ok {
		n.Note = why
		return &n
	}
	if len(n.Failures) > 0 {
		n.Note = fmt.Sprintf("%d recent failed auto-start(s); last: %s", len(n.Failures), n.LastError)
		return &n
	}
	return nil
}
