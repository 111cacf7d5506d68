package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/report"
	"github.com/kunobi-ninja/kache/rpc"
)

// isTerminal reports whether w is a terminal: a progress line that
// rewrites itself is for people, not for logs or pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// drainLine is `kache daemon stop`'s progress on a terminal's stderr: one
// line rewritten in place with the uploads left, their bytes and the time
// left of the drain's cap.
type drainLine struct {
	w     io.Writer
	p     config.Paths
	cap   time.Duration // the drain timeout
	shown bool
	next  time.Time
	spool report.Backlog // summed at most once a second
	drawn time.Time
}

func newDrainLine(env *Env, p config.Paths) *drainLine {
	if !isTerminal(env.Stderr) {
		return nil
	}
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		cfg.DrainTimeout = config.DefaultDrainTimeout
	}
	return &drainLine{w: env.Stderr, p: p, cap: cfg.DrainTimeout}
}

// show asks the draining daemon (it still answers status) and redraws.
func (l *drainLine) show(ctx context.Context) {
	if time.Since(l.drawn) < 200*time.Millisecond {
		return
	}
	l.drawn = time.Now()
	c := &rpc.Client{Socket: l.p.Socket, CallTimeout: 500 * time.Millisecond}
	st, err := c.Status(ctx)
	c.Close()
	if err != nil {
		return
	}
	if now := time.Now(); now.After(l.next) {
		l.spool, l.next = report.SpoolBacklog(l.p), now.Add(time.Second)
	}
	left := max(time.Until(st.StateSince.Add(l.cap)), 0)
	fmt.Fprintf(l.w, "\r\033[Kdraining: %d uploads left (%d in flight, %s in the spool), %s left of the %s cap",
		l.spool.Intents, st.Queue.InFlight, l.spool.Size(), left.Round(time.Second), l.cap)
	l.shown = true
}

// done clears the line.
func (l *drainLine) done() {
	if l != nil && l.shown {
		fmt.Fprint(l.w, "\r\033[K")
	}
}
