package supervisor

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// TestExpositionIsExpfmts: the daemon's own exposition is what the
// Prometheus libraries write for the same families, byte for byte, in
// both formats: integers, fractions, large and tiny values, escaped label
// values and help, counters with labels, gauges, and a histogram.
func TestExpositionIsExpfmts(t *testing.T) {
	hist := &histogram{bounds: []float64{0.01, 0.5, 1, 10, 300}, cum: []uint64{1, 3, 3, 7, 8}, count: 9, sum: 123.456}
	ours := func() []family {
		return []family{
			gauge("kache_b_gauge", `help with a \ backslash and "quotes"`, 0.015535066),
			gauge("kache_a_big", "large", 1.5e21),
			gauge("kache_a_tiny", "tiny", 2.5e-9),
			gauge("kache_a_int", "integer", 42),
			gauge("kache_a_neg", "minus one", -1),
			counter("kache_c_count", "a counter", 7),
			counterVec("kache_d_vec", "by outcome", "outcome", map[string]int64{"zeta": 1, "alpha": 0, "q\"uo\\te\nnl": 3}),
			breaker("open"),
			{name: "kache_e_hist", help: "latency", typ: "histogram", hist: hist},
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(theirs{hist})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		om     bool
		format expfmt.Format
	}{{true, expfmt.FmtOpenMetrics_1_0_0}, {false, expfmt.FmtText}} {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, c.format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		if cl, ok := enc.(expfmt.Closer); ok {
			cl.Close()
		}
		if got := expose(ours(), c.om); got != buf.String() {
			t.Errorf("openmetrics=%v: ours\n%s\nexpfmt's\n%s", c.om, got, buf.String())
		}
	}
	if openMetricsType != string(expfmt.FmtOpenMetrics_1_0_0) || textType != string(expfmt.FmtText) {
		t.Errorf("content types %q, %q; expfmt's %q, %q", openMetricsType, textType, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtText)
	}
}

// theirs is the same families through client_golang.
type theirs struct{ h *histogram }

func (theirs) Describe(chan<- *prometheus.Desc) {}

func (c theirs) Collect(ch chan<- prometheus.Metric) {
	g := func(name, help string, v float64) {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v)
	}
	g("kache_b_gauge", `help with a \ backslash and "quotes"`, 0.015535066)
	g("kache_a_big", "large", 1.5e21)
	g("kache_a_tiny", "tiny", 2.5e-9)
	g("kache_a_int", "integer", 42)
	g("kache_a_neg", "minus one", -1)
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("kache_c_count_total", "a counter", nil, nil), prometheus.CounterValue, 7)
	vec := prometheus.NewDesc("kache_d_vec_total", "by outcome", []string{"outcome"}, nil)
	for k, v := range map[string]float64{"zeta": 1, "alpha": 0, "q\"uo\\te\nnl": 3} {
		ch <- prometheus.MustNewConstMetric(vec, prometheus.CounterValue, v, k)
	}
	st := prometheus.NewDesc("kache_breaker_state", "The remote's circuit breaker: 1 for its current state.", []string{"state"}, nil)
	for s, v := range map[string]float64{"closed": 0, "open": 1, "half_open": 0} {
		ch <- prometheus.MustNewConstMetric(st, prometheus.GaugeValue, v, s)
	}
	buckets := map[float64]uint64{}
	for i, le := range c.h.bounds {
		buckets[le] = c.h.cum[i]
	}
	ch <- prometheus.MustNewConstHistogram(prometheus.NewDesc("kache_e_hist", "latency", nil, nil), c.h.count, c.h.sum, buckets)
}
