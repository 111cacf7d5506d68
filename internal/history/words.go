package history

import (
	"fmt"
	"strings"
	"time"
)

// Ways a daemon is started, recorded in the start line's How.
const (
	HowService    = "service"    // a service manager started it (systemd, launchd)
	HowSocket     = "socket"     // systemd socket activation
	HowStart      = "start"      // `kache daemon start`
	HowAuto       = "auto"       // auto-started by a client command (By says which)
	HowSuccessor  = "successor"  // started while an old daemon drained, took over after it
	HowRestart    = "restart"    // `kache daemon restart` spawned it
	HowForeground = "foreground" // `kache daemon run` from a shell
)

// StartedWords says how the generation started, in words.
func (g Generation) StartedWords() string {
	s := g.Start
	if s == nil {
		return "start not recorded (rotated away)"
	}
	words := howWords(s.How)
	if s.Predecessor != 0 {
		words += fmt.Sprintf(" of pid %d", s.Predecessor)
	}
	if s.RestartReason != "" {
		words += "; restart: " + s.RestartReason
	}
	return words
}

func howWords(how string) string {
	switch how {
	case HowService:
		return "started by the service manager"
	case HowSocket:
		return "started by socket activation"
	case HowStart:
		return "started by `kache daemon start`"
	case HowSuccessor:
		return "successor"
	case HowRestart:
		return "started by `kache daemon restart`"
	case HowForeground, "":
		return "run in the foreground (`kache daemon run`)"
	}
	if cmd, ok := strings.CutPrefix(how, HowAuto+":"); ok {
		return "auto-started by `kache " + cmd + "`"
	}
	return "started by " + how
}

// EndedWords says how the generation ended, in words.
func (g Generation) EndedWords() string {
	if g.Running {
		return "running"
	}
	e := g.End
	if e == nil {
		return "killed or crashed (no exit recorded)"
	}
	return fmt.Sprintf("%s (exit %d; drained %d, left %d, failed %d)", reasonWords(e.Reason, g.drainCause()), e.Code, e.Drained, e.Left, e.Failed)
}

// drainCause is why the generation began to drain: the cause of its
// last change into a draining state ("kache daemon stop", "signal
// terminated", "client epoch ... is newer").
func (g Generation) drainCause() string {
	for i := len(g.States) - 1; i >= 0; i-- {
		if s := g.States[i]; s.From == "running" || s.From == "starting" {
			return s.Cause
		}
	}
	return ""
}

func reasonWords(reason, cause string) string {
	switch reason {
	case "stop":
		if cause != "" {
			return "stopped (" + cause + ")"
		}
		return "stopped on request (`kache daemon stop` or SIGTERM/SIGINT)"
	case "idle":
		return "exited idle"
	case "epoch_stale":
		if cause != "" {
			return "exited for a newer kache binary (" + cause + ")"
		}
		return "exited for a newer kache binary"
	case "handed_over":
		if cause != "" {
			return "handed over to a successor (" + cause + ")"
		}
		return "handed over to a successor"
	case "forced":
		return "forced out by a second signal before its drain finished"
	}
	return reason
}

// Line is the generation in one line of text, for `kache daemon history`.
func (g Generation) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  pid %-7d", g.Started.Local().Format(time.DateTime), g.Pid)
	if s := g.Start; s != nil {
		fmt.Fprintf(&b, " %s", s.Version)
	}
	fmt.Fprintf(&b, "  %s; %s", g.StartedWords(), g.EndedWords())
	if g.End != nil {
		fmt.Fprintf(&b, " after %s", g.End.TS.Sub(g.Started).Round(time.Second))
	}
	return b.String()
}
