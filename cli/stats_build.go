package cli

import (
	"fmt"
	"io"
	"sort"

	"github.com/kunobi-ninja/kache/internal/report"
)

func printGoStats(w io.Writer, g report.GoStats) {
	if g.Sessions == 0 {
		return
	}
	fmt.Fprintln(w, "go builds (builds.jsonl, GOCACHEPROG=\"kache cacheprog\"):")
	fmt.Fprintf(w, "  sessions:    %d: %d gets (%d local hits, %d remote hits, %d misses), %d puts\n",
		g.Sessions, g.Gets, g.Hits, g.RemoteHits, g.Misses, g.Puts)
	fmt.Fprintf(w, "  hit rate:    %.1f%%; %.1f MiB served, %.1f MiB stored; kache's own CPU %.1f s\n",
		100*g.HitRate, float64(g.BytesOut)/(1<<20), float64(g.BytesIn)/(1<<20), g.CPUMs/1000)
}

func printBuildStats(w io.Writer, b report.BuildStats, g report.GoStats, s report.StoreStats) {
	fmt.Fprintln(w, "rust builds (builds.jsonl):")
	fmt.Fprintf(w, "  rustc calls: %d: %d local hits, %d remote hits, %d misses, %d run unchanged\n",
		b.Invocations, b.LocalHits, b.RemoteHits, b.Misses, b.Passthrough)
	fmt.Fprintf(w, "  hit rate:    %.1f%%; compile time saved %.1f s\n", 100*b.HitRate, b.SavedMs/1000)
	reasons := make([]string, 0, len(b.Reasons))
	for r := range b.Reasons {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return b.Reasons[reasons[i]] > b.Reasons[reasons[j]] })
	for i, r := range reasons {
		if i == 5 {
			break
		}
		fmt.Fprintf(w, "    %5d × %s\n", b.Reasons[r], r)
	}
	printGoStats(w, g)
	fmt.Fprintf(w, "local store:   %d entries, %.1f MiB of %.0f MiB cap\n", s.Entries, float64(s.Bytes)/(1<<20), float64(s.Cap)/(1<<20))
}
