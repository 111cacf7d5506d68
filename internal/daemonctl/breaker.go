package daemonctl

import (
	"fmt"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/statefile"
)

// The crash-loop breaker: after breakerLimit failed auto-starts within
// breakerWindow, clients stop auto-starting for breakerCooldown. It lives
// in a file beside the socket because every wrapper is a separate process;
// a lost update under a race only delays the breaker by one try.
const (
	breakerLimit    = 3
	breakerWindow   = time.Minute
	breakerCooldown = 2 * time.Minute
)

// BreakerNote is the breaker's file, and what status shows of it.
type BreakerNote struct {
	Failures  []time.Time `json:"failures,omitempty"`
	OpenUntil *time.Time  `json:"open_until,omitempty"`
	LastError string      `json:"last_error,omitempty"`
	// Epoch is the build epoch of the installation whose starts failed:
	// the breaker holds for that installation only, so a fixed or
	// finished install is tried at once.
	Epoch int64  `json:"epoch,omitempty"`
	Note  string `json:"note,omitempty"`
}

// FileBreaker is the StartBreaker every client process shares, over the
// file config.Paths.ClientBreakerFile.
type FileBreaker struct {
	path    string
	epoch   int64 // this client's installation
	now     func() time.Time
	logHint func() string // the daemon log's name and last lines
}

// NewBreaker is the breaker of the installation with this build epoch; a
// refusal ends with the daemon log's last lines (LogHint).
func NewBreaker(p config.Paths, epoch int64) *FileBreaker {
	return &FileBreaker{path: p.ClientBreakerFile(), epoch: epoch, now: time.Now, logHint: func() string { return LogHint(p) }}
}

// load reads the breaker; missing, corrupt, or tripped by another
// installation (a half-finished install since completed or replaced) is
// closed.
func (b *FileBreaker) load() BreakerNote {
	var n BreakerNote
	_ = statefile.ReadJSON(b.path, &n)
	if n.Epoch != b.epoch {
		return BreakerNote{Epoch: b.epoch}
	}
	return n
}

func (b *FileBreaker) save(n BreakerNote) {
	_ = statefile.WriteJSON(b.path, n) // unique temp name: wrappers run side by side
}

// Allow refuses while the breaker is open, saying until when and why.
func (b *FileBreaker) Allow() (bool, string) {
	n := b.load()
	if n.OpenUntil != nil && b.now().Before(*n.OpenUntil) {
		return false, fmt.Sprintf("auto-start paused until %s after %d failed starts (last: %s); fix the cause, then run `kache daemon start` to try now%s",
			n.OpenUntil.Local().Format(time.TimeOnly), breakerLimit, n.LastError, b.logHint())
	}
	return true, ""
}

// Record clears the breaker on success and counts a failure otherwise.
func (b *FileBreaker) Record(err error) {
	if err == nil {
		if _, statErr := os.Stat(b.path); statErr == nil {
			_ = os.Remove(b.path)
		}
		return
	}
	n, now := b.load(), b.now()
	kept := n.Failures[:0]
	for _, t := range n.Failures {
		if now.Sub(t) < breakerWindow {
			kept = append(kept, t)
		}
	}
	n.Failures, n.LastError = append(kept, now), err.Error()
	if len(n.Failures) >= breakerLimit {
		until := now.Add(breakerCooldown)
		n.OpenUntil, n.Failures = &until, nil
	}
	b.save(n)
}

// ReadBreaker is the breaker's state for status, or nil when closed.
func ReadBreaker(p config.Paths, epoch int64) *BreakerNote {
	b := NewBreaker(p, epoch)
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
