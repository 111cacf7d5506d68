package uploader

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
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

// The in-flight byte count follows what the remote reads, and starts over
// when the body is read again from the start (a signing pass, a retry).
func TestCountedBody(t *testing.T) {
	var n atomic.Int64
	body := counted(withProgress(context.Background(), &n), bytes.NewReader(make([]byte, 1000)))
	buf := make([]byte, 300)
	body.Read(buf)
	body.Read(buf)
	if got := n.Load(); got != 600 {
		t.Fatalf("counted %d bytes after two reads of 300, want 600", got)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil || n.Load() != 0 {
		t.Fatalf("after a seek to the start: %d counted (%v), want 0", n.Load(), err)
	}
	if plain := counted(context.Background(), bytes.NewReader(nil)); plain == nil {
		t.Fatal("counted without a counter returned nil")
	}
}
