package monitor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kunobi-ninja/kache/internal/bytesize"
	"github.com/kunobi-ninja/kache/internal/totals"
)

func buildTab(s Snapshot) []string {
	lines := append(currentBuild(s), goSession(s.GoSession)...)
	if st := s.Stats; st != nil {
		last := "none yet"
		if st.LastBuildAt != nil {
			last = fmt.Sprintf("%s ago (session %s)", dur(s.At.Sub(*st.LastBuildAt)), st.LastBuildSession)
		}
		lines = append(lines, "this daemon:",
			fmt.Sprintf("  build sessions: %d, last %s", st.Builds, last),
			"  remote checks:  "+checks(st.RemoteHits, st.RemoteMisses))
	}
	if t := s.Totals; t != nil {
		lines = append(lines, fmt.Sprintf("in total since %s:", t.Since.Format(time.DateTime)),
			fmt.Sprintf("  build sessions: %d", t.Counters.Builds),
			"  remote checks:  "+checks(t.Counters.RemoteHits, t.Counters.RemoteMisses))
	}
	return lines
}

// currentBuild is the current (or last) cargo build from builds.jsonl.
func currentBuild(s Snapshot) []string {
	var lines []string
	if s.BuildLogError != "" {
		lines = append(lines, "builds.jsonl: "+s.BuildLogError)
	}
	b := s.Build
	if b == nil {
		return append(lines, "cargo build: none recorded yet (builds.jsonl)")
	}
	head := "cargo build"
	if b.Cargo != 0 {
		head += fmt.Sprintf(" (cargo pid %d)", b.Cargo)
	}
	lines = append(lines,
		fmt.Sprintf("%s: started %s, last invocation ended %s ago", head, b.Started.Format(time.TimeOnly), dur(s.At.Sub(b.Last))),
		fmt.Sprintf("  rustc calls: %d: %d local hits, %d remote hits, %d misses, %d run unchanged; hit rate %.0f%%",
			b.Invocations, b.LocalHits, b.RemoteHits, b.Misses, b.Passthrough, 100*b.HitRate),
		fmt.Sprintf("  compile time saved: %s (the calls took %s)", secs(b.SavedMs), secs(b.TookMs)))
	for _, r := range topReasons(b.Reasons, 5) {
		lines = append(lines, fmt.Sprintf("  run unchanged %d× %s", b.Reasons[r], r))
	}
	lines = append(lines, "  last calls, newest first:")
	for _, c := range b.Recent {
		crate := cmp.Or(c.Crate, "-")
		line := fmt.Sprintf("    %s  %-20s %-11s %8.0f ms", c.At.Format(time.TimeOnly), crate, c.Outcome, c.Ms)
		if c.Reason != "" {
			line += "  " + c.Reason
		}
		lines = append(lines, line)
	}
	return lines
}

// goSession is the go command's latest `kache cacheprog` session.
func goSession(g *GoSession) []string {
	if g == nil {
		return nil
	}
	rate := 0.0
	if g.Gets > 0 {
		rate = 100 * float64(g.Hits) / float64(g.Gets)
	}
	return []string{
		fmt.Sprintf("go build (kache cacheprog): started %s, lasted %s", g.At.Format(time.TimeOnly), secs(g.Ms)),
		fmt.Sprintf("  gets: %d: %d hits (%d from the remote), %d misses; hit rate %.0f%%", g.Gets, g.Hits, g.RemoteHits, g.Misses, rate),
		fmt.Sprintf("  puts: %d; stored %s, served %s; kache's own CPU %s",
			g.Puts, bytesize.Format(g.BytesIn), bytesize.Format(g.BytesOut), secs(g.CPUMs)),
	}
}

// topReasons is the n most frequent reasons, most frequent first.
func topReasons(reasons map[string]int, n int) []string {
	keys := slices.Collect(maps.Keys(reasons))
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(reasons[b], reasons[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return keys[:min(n, len(keys))]
}

// secs is milliseconds as seconds with one decimal.
func secs(ms float64) string { return fmt.Sprintf("%.1f s", ms/1000) }

func checks(hit, miss int64) string {
	s := fmt.Sprintf("%d hit, %d miss", hit, miss)
	if n := hit + miss; n > 0 {
		s += fmt.Sprintf(" (%.0f%% hits)", 100*float64(hit)/float64(n))
	}
	return s
}

func storeTab(s Snapshot) []string {
	lines := []string{
		fmt.Sprintf("local store: %d entries, %s", s.Store.Entries, bytesize.Format(s.Store.Bytes)),
		"spool:       " + spoolLine(s),
		fmt.Sprintf("failed:      %d intents (never retried on their own: `kache upload --retry-failed`)", s.FailedN),
	}
	for _, f := range s.Failed {
		lines = append(lines, fmt.Sprintf("  %s  %s  %s", f.FailedAt.Format(time.DateTime), f.Key, f.Error))
	}
	return lines
}

func spoolLine(s Snapshot) string {
	sp := s.Spool
	line := fmt.Sprintf("%d intents waiting, %s", sp.Intents, bytesize.Format(sp.Bytes))
	if !sp.Oldest.IsZero() {
		line += fmt.Sprintf(", oldest %s ago", dur(s.At.Sub(sp.Oldest)))
	}
	return line
}

func transfersTab(s Snapshot) []string {
	var lines []string
	if d := s.Daemon; d != nil {
		q := d.Queue
		line := fmt.Sprintf("queue:  %d queued, %d in flight, %d in the spool; remote %s, breaker %s", q.Queued, q.InFlight, q.Spool, d.Remote, q.Breaker)
		lines = append(lines, line)
		if q.Paused != "" {
			lines = append(lines, "paused: "+q.Paused)
		}
		if len(q.WaitingForBuild) > 0 {
			lines = append(lines, fmt.Sprintf("holding: uploads wait for the running build to end (pid %v)", q.WaitingForBuild))
		}
		for _, f := range s.Uploading {
			lines = append(lines, fmt.Sprintf("  uploading %s  %s of %s at %s  for %s", f.Key, bytesize.Format(f.Sent), bytesize.Format(f.Bytes), rate(f.Sent, s.At.Sub(f.Since)), dur(s.At.Sub(f.Since))))
		}
	} else {
		lines = append(lines, "queue:  "+spoolLine(s)+" (no daemon uploads them now)")
	}
	if st := s.Stats; st != nil {
		lines = append(lines, "this daemon: "+uploads(st.Counters))
	}
	if t := s.Totals; t != nil {
		lines = append(lines, "in total:    "+uploads(t.Counters))
	}
	lines = append(lines, "recent:")
	if len(s.Recent) == 0 {
		lines = append(lines, "  none")
	}
	for _, e := range s.Recent {
		line := fmt.Sprintf("  %s  %-15s %s", e.TS.Format(time.TimeOnly), e.Kind, e.Key)
		if e.Bytes > 0 {
			line += "  " + bytesize.Format(e.Bytes)
		}
		if e.Ms > 0 {
			line += fmt.Sprintf("  %d ms", e.Ms)
		}
		if e.Error != "" {
			line += "  " + e.Error
		}
		lines = append(lines, line)
	}
	return lines
}

func uploads(c totals.Counters) string {
	return fmt.Sprintf("%d uploaded, %d skipped (already remote), %d failed, %s sent", c.UploadsCompleted, c.UploadsSkipped, c.UploadsFailed, bytesize.Format(c.BytesUploaded))
}

func lifecycleTab(s Snapshot) []string {
	if len(s.History) == 0 {
		return []string{"no daemon history yet"}
	}
	lines := []string{"daemon generations, newest first:"}
	for _, g := range s.History {
		lines = append(lines, "  "+g.Line())
	}
	return lines
}
