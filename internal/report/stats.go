package report

import (
	"path/filepath"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/store"
	"github.com/kunobi-ninja/kache/internal/totals"
)

// Counters are the transfer counts stats prints, of this daemon and in
// total across restarts (rpc.Stats carries both).
type Counters = totals.Counters

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

// BuildsFile is the wrappers' record, builds.jsonl.
func BuildsFile(p config.Paths) string { return filepath.Join(p.CacheDir, "builds.jsonl") }

// Builds sums the wrappers' records: the Rust wrapper's calls and the go
// command's sessions.
func Builds(p config.Paths) (BuildStats, GoStats) {
	var b BuildStats
	var g GoStats
	_ = buildlog.Read(BuildsFile(p), func(r buildlog.Record) {
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

// Store measures the store (a walk of its directory) against the cap the
// configuration getenv sees sets (the default if it is invalid).
func Store(p config.Paths, getenv func(string) string) StoreStats {
	s := StoreStats{Cap: config.DefaultStoreCap}
	if cfg, err := config.Load(getenv); err == nil {
		s.Cap = cfg.StoreCap
	}
	es, _ := store.Store{Dir: p.StoreDir()}.Scan()
	s.Usage = store.Size(es)
	return s
}
