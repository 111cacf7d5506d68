package supervisor

import (
	"bytes"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// metricFormats are the expositions `kache stats --format` asks for.
var metricFormats = map[string]expfmt.Format{
	"":            expfmt.FmtOpenMetrics_1_0_0,
	"openmetrics": expfmt.FmtOpenMetrics_1_0_0,
	"prometheus":  expfmt.FmtText,
}

// metrics renders the counters and gauges with the Prometheus libraries,
// here in the daemon so that the client, started by every compile, links
// none of them. A fresh registry per request: the values are read from
// the pool and the lasting totals, never kept twice.
func (d *Daemon) metrics(a *rpc.MetricsArgs) *rpc.Response {
	name := ""
	if a != nil {
		name = a.Format
	}
	format, ok := metricFormats[name]
	if !ok {
		return rpc.Fail(rpc.ErrBadRequest, "metrics format %q: want openmetrics or prometheus", name)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d})
	families, err := reg.Gather()
	if err != nil {
		return rpc.Fail(rpc.ErrInternal, "gather metrics: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return rpc.Fail(rpc.ErrInternal, "encode metrics: %v", err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		_ = c.Close() // OpenMetrics' "# EOF"
	}
	return &rpc.Response{OK: true, Metrics: &rpc.MetricsResult{ContentType: string(format), Text: buf.String()}}
}

// collector is an unchecked prometheus.Collector: Describe sends nothing,
// Collect builds constant metrics from a snapshot.
type collector struct{ d *Daemon }

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	ps := d.pool.Stats()
	sum := spool.Summarize(d.o.Paths.SpoolDir())
	age := 0.0
	if !sum.Oldest.IsZero() {
		age = time.Since(sum.Oldest).Seconds()
	}
	gauge(ch, "kache_spool_intents", "Upload intents waiting in the spool.", float64(sum.Intents))
	gauge(ch, "kache_spool_bytes", "Bytes of the sources the spooled intents name.", float64(sum.Bytes))
	gauge(ch, "kache_spool_oldest_age_seconds", "Age of the oldest pending upload intent (0: none).", age)
	gauge(ch, "kache_queue_queued", "Uploads queued in the daemon's window.", float64(ps.Queued))
	gauge(ch, "kache_queue_in_flight", "Uploads in flight.", float64(ps.InFlight))
	gauge(ch, "kache_failed_intents", "Intents that failed permanently (upload-queue/failed).", float64(ps.FailedIntents))
	gauge(ch, "kache_daemon_uptime_seconds", "Seconds since this daemon started.", time.Since(d.started).Seconds())
	breaker(ch, ps.Breaker)
	c.totals(ch)
	latencyHistogram(ch, d.pool.Latency())
}

// totals are the counters across restarts (reset by `kache stats --reset`).
func (c collector) totals(ch chan<- prometheus.Metric) {
	t := c.d.currentTotals()
	if t == nil {
		return
	}
	n := t.Counters
	counterVec(ch, "kache_uploads", "Uploads by outcome, across daemon restarts.", "outcome",
		map[string]int64{"completed": n.UploadsCompleted, "skipped": n.UploadsSkipped, "failed": n.UploadsFailed})
	counterVec(ch, "kache_remote_checks", "Remote checks by outcome, across daemon restarts.", "outcome",
		map[string]int64{"hit": n.RemoteHits, "miss": n.RemoteMisses})
	counter(ch, "kache_uploaded_bytes", "Bytes uploaded, across daemon restarts.", n.BytesUploaded)
	counter(ch, "kache_downloads", "Entries downloaded, across daemon restarts.", n.Downloads)
	counter(ch, "kache_downloaded_bytes", "Bytes downloaded, across daemon restarts.", n.BytesDownloaded)
	counter(ch, "kache_builds", "Build sessions started, across daemon restarts.", n.Builds)
	ends := map[string]int64{"stop": 0, "idle": 0, "epoch_stale": 0, "forced": 0, "killed": 0}
	for k, v := range t.Ends {
		ends[k] = v
	}
	counterVec(ch, "kache_daemon_restarts", "Daemon generations that ended, by reason (killed: no exit recorded).", "reason", ends)
	gauge(ch, "kache_totals_since_timestamp_seconds", "When the totals were last reset.", float64(t.Since.Unix()))
}

func gauge(ch chan<- prometheus.Metric, name, help string, v float64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v)
}

// counter names are given without _total: the encoders add it.
func counter(ch chan<- prometheus.Metric, name, help string, v int64) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name+"_total", help, nil, nil), prometheus.CounterValue, float64(v))
}

func counterVec(ch chan<- prometheus.Metric, name, help, label string, vs map[string]int64) {
	desc := prometheus.NewDesc(name+"_total", help, []string{label}, nil)
	for k, v := range vs {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), k)
	}
}

// breaker is a state set: one series per state, 1 for the current one.
func breaker(ch chan<- prometheus.Metric, state string) {
	desc := prometheus.NewDesc("kache_breaker_state", "The remote's circuit breaker: 1 for its current state.", []string{"state"}, nil)
	for _, s := range []string{"closed", "open", "half_open"} {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, s)
	}
}

// latencyHistogram is this daemon's upload latencies (they do not last
// across restarts: a histogram restarts at zero like any process's).
func latencyHistogram(ch chan<- prometheus.Metric, l uploader.Latency) {
	buckets := make(map[float64]uint64, len(uploader.LatencyBuckets))
	var cum uint64
	for i, le := range uploader.LatencyBuckets {
		cum += l.Counts[i]
		buckets[le] = cum
	}
	total := cum + l.Counts[len(l.Counts)-1]
	desc := prometheus.NewDesc("kache_upload_duration_seconds", "Upload latency from first attempt to the remote's confirmation, this daemon.", nil, nil)
	ch <- prometheus.MustNewConstHistogram(desc, total, l.Sum.Seconds(), buckets)
}
