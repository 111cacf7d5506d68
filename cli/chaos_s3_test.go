package cli_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosS3Faults (scenario c): clients upload through a proxy that
// answers 8% of the requests with 500, 503, SlowDown or a stall mid-body
// until half the entries are up (an entry takes three requests, and five
// failed entries in a row open the breaker for 10 s: at 25% of requests
// it opens within half a second and the round measures the cooldown); then S3 itself is stopped and
// restarted in the middle of the stream (after the random faults, since
// an outage opens the breaker for its 10 s cooldown). Then the faults end: every entry must reach the bucket with
// its bytes, and none may be judged failed (all these faults are
// transient).
func TestChaosS3Faults(t *testing.T) {
	t.Parallel() // mostly waiting (a breaker cooldown, client timeouts)
	fig := newFigures(t, "S3 stopped and restarted; 500, 503, SlowDown, stalls mid-body")
	rng := seeded(3)
	srv := s3test.Start(t)
	proxy := startFaultProxy(t, srv.Endpoint, 3, pick(time.Second, 5*time.Second))
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	rounds, n := pick(1, 5), pick(150, 1000)
	for round := range rounds {
		es, dirs := mixedEntries(t, t.TempDir(), "s3f"+string(rune('a'+round)), n, uint64(round))
		proxy.setRate(0.08)
		m.ok("daemon", "start")
		var wg sync.WaitGroup
		batches := split(es, 25)
		for _, b := range batches {
			wg.Add(1)
			go func() { defer wg.Done(); uploadBatch(t, m, fig, b) }()
			time.Sleep(jitter(rng, 10*time.Millisecond, pick(100*time.Millisecond, 400*time.Millisecond)))
		}
		wg.Wait()
		faultsOnUntilHalf(m, len(es), pick(6*time.Second, 40*time.Second))
		t.Logf("round %d: %d requests through the faults, %d intents left", round, proxy.requests(), m.spool())
		proxy.setRate(0)
		outage(t, srv, rng, fig) // mid-stream: half the spool is still to go
		fig.Lost += account(t, m, srv, es, dirs, pick(90*time.Second, 300*time.Second))
		fig.Entries += len(es)
		fig.Rounds++
		m.ok("daemon", "stop")
	}
	for k, v := range proxy.faults() {
		t.Logf("fault %s served %d times", k, v)
		fig.Faults += v
	}
}

// outage stops S3 for a random while in the middle of the stream.
func outage(t *testing.T, srv *s3test.Server, rng interface {
	Int64N(int64) int64
}, fig *figures) {
	srv.Stop()
	fig.fault()
	time.Sleep(time.Duration(500+rng.Int64N(1500)) * time.Millisecond)
	srv.Restart()
}

// faultsOnUntilHalf keeps the faults on while the daemon works through
// the spool, until half of it is uploaded or the window passes: most of
// the uploads happen after the clients return, and must meet faults too.
func faultsOnUntilHalf(m *machine, n int, window time.Duration) {
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) && m.spool() > n/2 {
		time.Sleep(50 * time.Millisecond)
	}
}
