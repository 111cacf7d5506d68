package monitor

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/eventlog"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// readFiles fills what the files say, online or not: the store, the spool,
// failed intents, recent transfers and the lifecycle history, whose
// running generation is the one the probe h found.
func readFiles(p config.Paths, h daemonctl.Report, s *Snapshot) {
	s.Store = storeSize(p.StoreDir())
	s.Spool = spool.Summarize(p.SpoolDir())
	s.Failed, s.FailedN = failed(p.FailedDir())
	s.Recent = recentEvents(p.EventsFile(), maxRecent)
	gens, _ := history.Load(history.File(p.CacheDir))
	if pid, started, ok := h.Live(); ok {
		history.Mark(gens, pid, started)
	}
	if len(gens) > maxHistory {
		gens = gens[:maxHistory]
	}
	s.History = gens
}

// storeSize counts the store's entries (its top-level names, skipping
// temp files) and the bytes of their regular files.
func storeSize(dir string) Store {
	var st Store
	ents, err := os.ReadDir(dir)
	if err != nil {
		return st
	}
	for _, e := range ents {
		if e.Name()[0] == '.' {
			continue
		}
		st.Entries++
		_ = filepath.WalkDir(filepath.Join(dir, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					st.Bytes += fi.Size()
				}
			}
			return nil
		})
	}
	return st
}

// failed lists the failed intents, newest first.
func failed(dir string) ([]Failed, int) {
	keys := spool.Keys(dir)
	var out []Failed
	for _, k := range keys {
		if rec, err := spool.ReadFailed(dir, k); err == nil {
			out = append(out, Failed{Key: k, Error: rec.Error, FailedAt: rec.FailedAt})
		}
	}
	slices.SortFunc(out, func(a, b Failed) int { return b.FailedAt.Compare(a.FailedAt) })
	if len(out) > maxFailed {
		out = out[:maxFailed]
	}
	return out, len(keys)
}

// recentEvents is the last n events of the log, newest first. The log is
// at most 1 MiB before it rotates, so reading it whole is bounded.
func recentEvents(path string, n int) []Event {
	var ring []Event
	eventlog.Read(path, func(e Event) {
		ring = append(ring, e)
		if len(ring) > n {
			ring = ring[1:]
		}
	})
	slices.Reverse(ring)
	return ring
}

// offline explains a daemon that did not answer (the probe h), after the
// lifecycle document's table of symptoms and likely causes.
func offline(src Source, h daemonctl.Report) *Offline {
	o := &Offline{LastExit: h.Exit}
	held := h.Health == daemonctl.SocketGone || h.Health == daemonctl.Wedged
	if held {
		o.StateFile = h.State
	}
	switch {
	case o.LastExit != nil && o.LastExit.Reason == "epoch_stale" && time.Since(o.LastExit.At) < 30*time.Second:
		o.Cause = "epoch mismatch restart in progress (the daemon exited for a newer kache binary): wait a second and refresh"
	case held:
		o.Cause = "a process holds the run lock but does not answer (stopped, wedged or still starting): see `kache daemon status`; `kache daemon restart` recovers it"
	case src.ServiceInstalled != nil && !src.ServiceInstalled():
		o.Cause = "no daemon runs and the service is not installed: the next kache command starts one (`kache daemon install` keeps one running)"
	default:
		o.Cause = "no daemon runs: check `kache daemon log` for startup errors"
	}
	return o
}
