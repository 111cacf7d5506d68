package monitor

import (
	"fmt"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/internal/bytesize"
)

// Tabs of the monitor, in order; the number keys 1-4 pick them.
var Tabs = []string{"Build", "Store", "Transfers", "Lifecycle"}

// Header is the lines above the tabs: this binary, then the daemon or why
// it is offline.
func Header(s Snapshot) []string {
	b := s.Binary
	lines := []string{fmt.Sprintf("kache monitor  %s (epoch %d)  %s  %s", b.Version, b.Epoch, b.Exe, s.At.Format(time.TimeOnly))}
	d := s.Daemon
	if d == nil {
		lines = append(lines, "daemon: offline: "+s.Offline.Cause)
		if e := s.Offline.LastExit; e != nil {
			lines = append(lines, fmt.Sprintf("  last exit: pid %d, %s at %s (code %d, drained %d, left %d)", e.Pid, e.Reason, e.At.Format(time.DateTime), e.Code, e.Drained, e.Left))
		}
		return lines
	}
	line := fmt.Sprintf("daemon: pid %d  %s (epoch %d)  state %s for %s  up %s", d.Pid, d.Version, d.Epoch,
		d.State, dur(s.At.Sub(d.StateSince)), dur(time.Duration(d.UptimeMs)*time.Millisecond))
	if d.IdleDeadline != nil {
		line += fmt.Sprintf("  idle exit in %s", dur(d.IdleDeadline.Sub(s.At)))
	}
	lines = append(lines, line)
	if d.StateCause != "" {
		lines = append(lines, "  cause: "+d.StateCause)
	}
	return lines
}

// TabBar shows the tabs, the current one in brackets.
func TabBar(tab int) string {
	var b strings.Builder
	for i, t := range Tabs {
		if i == tab {
			fmt.Fprintf(&b, "[%d %s]  ", i+1, t)
		} else {
			fmt.Fprintf(&b, " %d %s   ", i+1, t)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// Body is the lines of one tab.
func Body(s Snapshot, tab int) []string {
	var lines []string
	if !s.Online {
		lines = append(lines, "(daemon offline: read from the files on disk)")
	}
	switch tab {
	case 0:
		return append(lines, buildTab(s)...)
	case 1:
		return append(lines, storeTab(s)...)
	case 2:
		return append(lines, transfersTab(s)...)
	}
	return append(lines, lifecycleTab(s)...)
}

// Text is the whole screen of one tab, each line cut to width (0: no cut).
func Text(s Snapshot, tab, width int) string {
	lines := Header(s)
	lines = append(lines, "", TabBar(tab), "")
	lines = append(lines, Body(s, tab)...)
	return cut(lines, width)
}

// Once is every tab one after the other: `kache monitor --once`.
func Once(s Snapshot) string {
	lines := Header(s)
	for i, t := range Tabs {
		lines = append(lines, "", "== "+t+" ==")
		lines = append(lines, Body(s, i)...)
	}
	return cut(lines, 0)
}

func cut(lines []string, width int) string {
	var b strings.Builder
	for _, l := range lines {
		if width > 0 && len([]rune(l)) > width {
			l = string([]rune(l)[:width])
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// dur is a duration rounded to the second; a past deadline is 0s.
func dur(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}

// rate is n bytes over d as a transfer rate ("-" before any time passed).
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return bytesize.Format(int64(float64(n)/d.Seconds())) + "/s"
}
