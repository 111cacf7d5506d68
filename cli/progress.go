package cli

import (
	"fmt"
	"io"
	"time"
)

// progress prints a line about a wait once it has lasted a second, then at
// most once a second and only when the message changed, so short waits
// stay silent and long ones do not flood the terminal.
type progress struct {
	w     io.Writer
	start time.Time
	shown time.Time
	last  string
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) show(msg string) {
	now := time.Now()
	if now.Sub(p.start) < time.Second || now.Sub(p.shown) < time.Second || msg == p.last {
		return
	}
	p.last, p.shown = msg, now
	fmt.Fprintf(p.w, "  %s (%.0fs)\n", msg, now.Sub(p.start).Seconds())
}
