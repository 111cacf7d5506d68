package cli

import (
	"fmt"
	"io"
	"time"
)

// progress prints a line about a wait once it has lasted a second, then
// whenever the message changes, so short waits stay silent.
type progress struct {
	w     io.Writer
	start time.Time
	last  string
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) show(msg string) {
	elapsed := time.Since(p.start)
	if elapsed < time.Second || msg == p.last {
		return
	}
	p.last = msg
	fmt.Fprintf(p.w, "  %s (%.0fs)\n", msg, elapsed.Seconds())
}
