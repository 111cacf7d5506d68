package cli

import (
	"fmt"
	"io"
	"sort"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/store"
)

// BuildStats is what the Rust wrapper did, read from builds.jsonl.
type BuildStats = buildlog.Counts

// StoreStats is the local store against its cap.
type StoreStats struct {
	store.Usage
	Cap int64 `json:"cap_bytes"`
}

// GoStats is what `kache cacheprog` served the go command, summed over
// its sessions in builds.jsonl.
type GoStats struct {
	Sessions int `json:"sessions"`
	buildlog.GoCounts
	HitRate float64 `json:"hit_rate"` // (hits + remote hits) / gets
}

// readBuildStats sums the wrappers' records: the Rust wrapper's calls
// and the go command's sessions.
func readBuildStats(p config.Paths) (BuildStats, GoStats) {
	var b BuildStats
	var g GoStats
	_ = buildlog.Read(p.CacheDir+"/builds.jsonl", func(r buildlog.Record) {
		switch r.Tool {
		case "rustc":
			b.Add(r)
		case "go":
			if r.Go != nil {
				g.add(*r.Go)
			}
		}
	})
	if g.Gets > 0 {
		g.HitRate = float64(g.Hits+g.RemoteHits) / float64(g.Gets)
	}
	return b, g
}

func (g *GoStats) add(c buildlog.GoCounts) {
	g.Sessions++
	g.Gets += c.Gets
	g.Hits += c.Hits
	g.RemoteHits += c.RemoteHits
	g.Misses += c.Misses
	g.Puts += c.Puts
	g.BytesIn += c.BytesIn
	g.BytesOut += c.BytesOut
	g.CPUMs += c.CPUMs
}

func printGoStats(w io.Writer, g GoStats) {
	if g.Sessions == 0 {
		return
	}
	fmt.Fprintln(w, "go builds (builds.jsonl, GOCACHEPROG=\"kache cacheprog\"):")
	fmt.Fprintf(w, "  sessions:    %d: %d gets (%d local hits, %d remote hits, %d misses), %d puts\n",
		g.Sessions, g.Gets, g.Hits, g.RemoteHits, g.Misses, g.Puts)
	fmt.Fprintf(w, "  hit rate:    %.1f%%; %.1f MiB served, %.1f MiB stored; kache's own CPU %.1f s\n",
		100*g.HitRate, float64(g.BytesOut)/(1<<20), float64(g.BytesIn)/(1<<20), g.CPUMs/1000)
}

// readStoreStats measures the store (a walk of its directory).
func readStoreStats(p config.Paths, env *Env) StoreStats {
	s := StoreStats{Cap: config.DefaultStoreCap}
	if cfg, err := config.Load(env.Getenv); err == nil {
		s.Cap = cfg.StoreCap
	}
	es, _ := store.Store{Dir: p.StoreDir()}.Scan()
	s.Usage = store.Size(es)
	return s
}

func printBuildStats(w io.Writer, b BuildStats, g GoStats, s StoreStats) {
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
