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
	// Epoch is the build epoch of the installation whose starts failed:
	// the breaker holds for that installation only, so a fixed or
	// finished install is tried at once.
	Epoch int64  `json:"epoch,omitempty"`
	Note  string `json:"note,omitempty"`
}

type autostartBreaker struct {
	path    string
	epoch   int64 // this client's installation
	now     func() time.Time
	logHint func() string // the daemon log's name and last lines
}

func newAutostartBreaker(p config.Paths, epoch int64) *autostartBreaker {
	return &autostartBreaker{path: p.ClientBreakerFile(), epoch: epoch, now: time.Now, logHint: func() string { return daemonLogHint(p) }}
}

// load reads the breaker; missing, corrupt, or tripped by another
// installation (a half-finished install since completed or replaced) is
// closed.
func (b *autostartBreaker) load() autostartNote {
	var n autostartNote
	_ = statefile.ReadJSON(b.path, &n)
	if n.Epoch != b.epoch {
		return autostartNote{Epoch: b.epoch}
	}
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
func readAutostart(p config.Paths, epoch int64) *autostartNote {
	b := newAutostartBreaker(p, epoch)
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
