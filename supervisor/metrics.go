package supervisor

import (
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader"
)

// metrics renders the counters and gauges (exposition.go), here in the
// daemon so that the client, started by every compile, renders nothing.
// The values are read from the pool and the lasting totals per request,
// never kept twice.
func (d *Daemon) metrics(a *rpc.MetricsArgs) *rpc.Response {
	name := ""
	if a != nil {
		name = a.Format
	}
	var om bool
	switch name {
	case "", "openmetrics":
		om = true
	case "prometheus":
	default:
		return rpc.Fail(rpc.ErrBadRequest, "metrics format %q: want openmetrics or prometheus", name)
	}
	ct := textType
	if om {
		ct = openMetricsType
	}
	return &rpc.Response{OK: true, Metrics: &rpc.MetricsResult{ContentType: ct, Text: expose(d.families(), om)}}
}

// families is a snapshot of the daemon's metrics.
func (d *Daemon) families() []family {
	ps := d.pool.Stats()
	sum := spool.Summarize(d.o.Paths.SpoolDir())
	age := 0.0
	if !sum.Oldest.IsZero() {
		age = time.Since(sum.Oldest).Seconds()
	}
	fs := []family{
		gauge("kache_spool_intents", "Upload intents waiting in the spool.", float64(sum.Intents)),
		gauge("kache_spool_bytes", "Bytes of the sources the spooled intents name.", float64(sum.Bytes)),
		gauge("kache_spool_oldest_age_seconds", "Age of the oldest pending upload intent (0: none).", age),
		gauge("kache_queue_queued", "Uploads queued in the daemon's window.", float64(ps.Queued)),
		gauge("kache_queue_in_flight", "Uploads in flight.", float64(ps.InFlight)),
		gauge("kache_failed_intents", "Intents that failed permanently (upload-queue/failed).", float64(ps.FailedIntents)),
		gauge("kache_daemon_uptime_seconds", "Seconds since this daemon started.", time.Since(d.started).Seconds()),
		breaker(ps.Breaker),
		latencyHistogram(d.pool.Latency()),
	}
	return append(fs, d.totalFamilies()...)
}

// totalFamilies are the counters across restarts (reset by `kache stats
// --reset`).
func (d *Daemon) totalFamilies() []family {
	t := d.currentTotals()
	if t == nil {
		return nil
	}
	n := t.Counters
	ends := map[string]int64{"stop": 0, "idle": 0, "epoch_stale": 0, "forced": 0, "killed": 0}
	for k, v := range t.Ends {
		ends[k] = v
	}
	return []family{
		counterVec("kache_uploads", "Uploads by outcome, across daemon restarts.", "outcome",
			map[string]int64{"completed": n.UploadsCompleted, "skipped": n.UploadsSkipped, "failed": n.UploadsFailed}),
		counterVec("kache_remote_checks", "Remote checks by outcome, across daemon restarts.", "outcome",
			map[string]int64{"hit": n.RemoteHits, "miss": n.RemoteMisses}),
		counter("kache_uploaded_bytes", "Bytes uploaded, across daemon restarts.", n.BytesUploaded),
		counter("kache_downloads", "Entries downloaded, across daemon restarts.", n.Downloads),
		counter("kache_downloaded_bytes", "Bytes downloaded, across daemon restarts.", n.BytesDownloaded),
		counter("kache_builds", "Build sessions started, across daemon restarts.", n.Builds),
		counterVec("kache_daemon_restarts", "Daemon generations that ended, by reason (killed: no exit recorded).", "reason", ends),
		gauge("kache_totals_since_timestamp_seconds", "When the totals were last reset.", float64(t.Since.Unix())),
	}
}

func gauge(name, help string, v float64) family {
	return family{name: name, help: help, typ: "gauge", samples: []sample{{v: v}}}
}

// counter names are given without _total: the exposition adds it.
func counter(name, help string, v int64) family {
	return family{name: name, help: help, typ: "counter", samples: []sample{{v: float64(v)}}}
}

func counterVec(name, help, label string, vs map[string]int64) family {
	f := family{name: name, help: help, typ: "counter"}
	for k, v := range vs {
		f.samples = append(f.samples, sample{label: label, value: k, v: float64(v)})
	}
	return f
}

// breaker is a state set: one series per state, 1 for the current one.
func breaker(state string) family {
	f := family{name: "kache_breaker_state", help: "The remote's circuit breaker: 1 for its current state.", typ: "gauge"}
	for _, s := range []string{"closed", "open", "half_open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		f.samples = append(f.samples, sample{label: "state", value: s, v: v})
	}
	return f
}

// latencyHistogram is this daemon's upload latencies (they do not last
// across restarts: a histogram restarts at zero like any process's).
func latencyHistogram(l uploader.Latency) family {
	h := &histogram{bounds: uploader.LatencyBuckets, sum: l.Sum.Seconds()}
	var cum uint64
	for i := range uploader.LatencyBuckets {
		cum += l.Counts[i]
		h.cum = append(h.cum, cum)
	}
	h.count = cum + l.Counts[len(l.Counts)-1]
	return family{name: "kache_upload_duration_seconds", help: "Upload latency from first attempt to the remote's confirmation, this daemon.", typ: "histogram", hist: h}
}
