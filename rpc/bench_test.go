package rpc

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkCallRoundTrip measures one status call over a kept connection
// against a trivial handler, reporting the median and 99th percentile.
func BenchmarkCallRoundTrip(b *testing.B) {
	h := HandlerFunc(func(context.Context, *Request) *Response { return OKResponse() })
	ts := startServer(b, h, ServerOptions{})
	c := ts.client(b)
	ctx := context.Background()
	if _, err := c.Call(ctx, &Request{Op: OpStatus}); err != nil {
		b.Fatal(err)
	}
	var durs []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Call(ctx, &Request{Op: OpStatus}); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(percentile(durs, 50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(durs, 99).Nanoseconds()), "p99-ns")
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}
