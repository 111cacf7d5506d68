package uploader

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the upload latency
// histogram: from a small entry to a local remote up to a large one over a
// slow link. An upload's latency runs from its first attempt to the
// remote's confirmation, retries included.
var LatencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// latency is a histogram of upload latencies with atomic counts, so a
// worker records one without a lock.
type latency struct {
	counts [14]atomic.Uint64 // len(LatencyBuckets)+1: the last is +Inf
	sumNs  atomic.Int64
}

func (l *latency) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(int64(d))
}

// Latency is a snapshot of the histogram: Counts[i] uploads took at most
// LatencyBuckets[i] (not cumulative; the last is over the largest bound).
type Latency struct {
	Counts []uint64
	Sum    time.Duration
}

// Latency returns the upload latency histogram of completed uploads
// (skipped ones too: the remote confirmed it has them).
func (p *Pool) Latency() Latency {
	l := &p.c.latency
	out := Latency{Counts: make([]uint64, len(l.counts)), Sum: time.Duration(l.sumNs.Load())}
	for i := range l.counts {
		out.Counts[i] = l.counts[i].Load()
	}
	return out
}
