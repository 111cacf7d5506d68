package uploader

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// blackhole accepts TCP connections and never answers: an S3 endpoint that
// hangs. It holds the connections until the test ends.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestPoolStalledS3FailsIntoRetries: a server that accepts and never
// answers must not hold workers forever: requests time out, count as
// transient failures, and the breaker opens, with every intent kept.
func TestPoolStalledS3FailsIntoRetries(t *testing.T) {
	old := responseHeaderTimeout
	responseHeaderTimeout = 300 * time.Millisecond
	t.Cleanup(func() { responseHeaderTimeout = old })
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	r, err := NewS3(context.Background(), config.S3{Bucket: "b", Endpoint: blackhole(t), Region: "us-east-1", Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f := newPoolFixture(t)
	o := f.options(t, r)
	o.BreakerThreshold, o.BreakerCooldown = 3, time.Minute
	p, _ := startPool(t, o)
	entries := spoolEntries(t, f, "stall", 6)
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "breaker open on a stalled remote", func() bool { return p.Stats().Breaker == BreakerOpen })
	if s := p.Stats(); s.UploadsCompleted != 0 || s.UploadsFailed != 0 || s.Spool != len(entries) {
		t.Fatalf("stats on a stalled remote = %+v; want nothing done, nothing failed, every intent kept", s)
	}
	if rep := p.Drain(time.Second); rep.Left != len(entries) {
		t.Fatalf("drain report %+v, want all %d left in the spool", rep, len(entries))
	}
}
