package uploader

import (
	"testing"
	"time"
)

func TestLatencyBuckets(t *testing.T) {
	var p Pool
	for _, d := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 11 * time.Millisecond, time.Hour} {
		p.c.latency.observe(d)
	}
	l := p.Latency()
	if len(l.Counts) != len(LatencyBuckets)+1 {
		t.Fatalf("%d counts for %d buckets", len(l.Counts), len(LatencyBuckets))
	}
	if l.Counts[0] != 2 || l.Counts[1] != 1 || l.Counts[len(l.Counts)-1] != 1 {
		t.Errorf("counts = %v: want 2 at <=10ms (the bound is inclusive), 1 at <=25ms, 1 over the last bound", l.Counts)
	}
	if want := time.Hour + 26*time.Millisecond; l.Sum != want {
		t.Errorf("sum = %s, want %s", l.Sum, want)
	}
}
