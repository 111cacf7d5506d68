package rpc

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// BenchmarkCallRoundTrip measures one status call over a kept connection
// against a trivial handler, reporting the median and 99th percentile.
func BenchmarkCallRoundTrip(b *testing.B) {
	ts := startServer(b, HandlerFunc(trivial), ServerOptions{})
	benchKept(b, ts.client(b))
}

// BenchmarkUpload measures what `kache upload` costs in RPC: one upload of
// one entry against a trivial handler on a real socket. "fresh" dials,
// sends, reads and closes each time, as a client process does; "kept"
// reuses one connection. "other-process" runs the server in a child
// process, as the daemon is, so wake-ups cross processes.
func BenchmarkUpload(b *testing.B) {
	b.Run("same-process/fresh", func(b *testing.B) {
		benchFresh(b, startServer(b, HandlerFunc(trivial), ServerOptions{}).sock)
	})
	b.Run("same-process/kept", func(b *testing.B) {
		benchKept(b, startServer(b, HandlerFunc(trivial), ServerOptions{}).client(b))
	})
	b.Run("other-process/fresh", func(b *testing.B) { benchFresh(b, childServer(b)) })
	b.Run("other-process/kept", func(b *testing.B) {
		c := &Client{Socket: childServer(b), Epoch: 1234}
		b.Cleanup(func() { c.Close() })
		benchKept(b, c)
	})
}

// childServer serves the trivial handler from a helper process.
func childServer(b *testing.B) string {
	sock := filepath.Join(testenv.SockDir(b), "d.sock")
	startHelper(b, "serve", sock, -1)
	return sock
}

var benchEntries = []UploadEntry{{Key: "0123456789abcdef0123456789abcdef", Path: "/home/u/src/target/debug/deps/libfoo-0123456789abcdef.rlib"}}

func benchFresh(b *testing.B, sock string) {
	ctx := context.Background()
	var durs []time.Duration
	for b.Loop() {
		start := time.Now()
		c := &Client{Socket: sock, Epoch: 1234}
		res, err := c.Upload(ctx, benchEntries)
		c.Close()
		if err != nil || res.Queued != 1 {
			b.Fatalf("upload: %+v, %v", res, err)
		}
		durs = append(durs, time.Since(start))
	}
	reportPercentiles(b, durs)
}

func benchKept(b *testing.B, c *Client) {
	ctx := context.Background()
	if _, err := c.Upload(ctx, benchEntries); err != nil {
		b.Fatal(err)
	}
	var durs []time.Duration
	for b.Loop() {
		start := time.Now()
		if res, err := c.Upload(ctx, benchEntries); err != nil || res.Queued != 1 {
			b.Fatalf("upload: %+v, %v", res, err)
		}
		durs = append(durs, time.Since(start))
	}
	reportPercentiles(b, durs)
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
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

// BenchmarkTrustChecks measures what the peer checks add to a call: the
// client's lstat of the socket file, and one peer-credential read (the
// client and the server each do one per connection).
func BenchmarkTrustChecks(b *testing.B) {
	ts := startServer(b, HandlerFunc(trivial), ServerOptions{})
	b.Run("lstat", func(b *testing.B) {
		for b.Loop() {
			if err := checkSocketFile(ts.sock, myUID()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("peercred", func(b *testing.B) {
		nc, err := dialUnix(context.Background(), ts.sock)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		for b.Loop() {
			if err := checkPeer(ts.sock, nc, myUID()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
