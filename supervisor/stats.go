package supervisor

import (
	"strconv"
	"time"

	"github.com/kunobi-ninja/kache/internal/epoch"

	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader"
)

func (d *Daemon) verdict(client int64) *rpc.EpochVerdict {
	return &rpc.EpochVerdict{Daemon: d.o.Epoch, Client: client, Relation: epoch.Relation(client, d.o.Epoch)}
}

// buildStats counts build_started requests.
type buildStats struct {
	count   int64
	last    time.Time
	session string
}

func (d *Daemon) recordBuild(session string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.builds.count++
	d.builds.last, d.builds.session = time.Now(), session
}

func (d *Daemon) stats() *rpc.Stats {
	st := &rpc.Stats{Counters: d.counters(), Queue: d.queue(), Totals: d.currentTotals()}
	d.mu.Lock()
	defer d.mu.Unlock()
	st.LastBuildSession = d.builds.session
	if !d.builds.last.IsZero() {
		last := d.builds.last
		st.LastBuildAt = &last
	}
	return st
}

func (d *Daemon) queue() rpc.QueueStats {
	q := queueOf(d.pool.Stats())
	q.WaitingForBuild = d.pool.WaitingForBuilds()
	return q
}

func queueOf(ps uploader.Stats) rpc.QueueStats {
	return rpc.QueueStats{Queued: ps.Queued, InFlight: ps.InFlight, Failed: ps.FailedIntents,
		Spool: ps.Spool, Breaker: ps.Breaker, Paused: ps.PausedReason, Synced: ps.Synced}
}

func (d *Daemon) remoteName() string {
	if d.remote != nil {
		return d.remote.String()
	}
	return "none"
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }
