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

// readBuildStats sums the wrapper's records.
func readBuildStats(p config.Paths) BuildStats {
	var b BuildStats
	_ = buildlog.Read(p.CacheDir+"/builds.jsonl", func(r buildlog.Record) {
		if r.Tool == "rustc" {
			b.Add(r)
		}
	})
	return b
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

func printBuildStats(w io.Writer, b BuildStats, s StoreStats) {
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
	fmt.Fprintf(w, "local store:   %d entries, %.1f MiB of %.0f MiB cap\n", s.Entries, float64(s.Bytes)/(1<<20), float64(s.Cap)/(1<<20))
}
