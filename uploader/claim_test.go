package uploader

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// countingPuts counts the uploads of each key and slows them a little, so
// two pools overlap on the same intents.
type countingPuts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingPuts) put(_ context.Context, key string) error {
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
	time.Sleep(time.Millisecond)
	return nil
}

// TestClaimsTwoPoolsOneSpool: two daemons' pools on one spool, as during a
// hand-over, upload every intent exactly once between them.
func TestClaimsTwoPoolsOneSpool(t *testing.T) {
	f := newPoolFixture(t)
	const n = 200
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("k%03d", i))
		f.entry(t, keys[i], 64)
	}
	puts := &countingPuts{n: map[string]int{}}
	r := &hookRemote{Remote: f.remote, put: puts.put}
	a, _ := startPool(t, f.options(t, r))
	b, _ := startPool(t, f.options(t, r))
	testenv.WaitFor(t, 30*time.Second, "both pools idle and the spool empty", func() bool {
		return idle(a, f.spool)() && idle(b, f.spool)()
	})
	puts.mu.Lock()
	defer puts.mu.Unlock()
	for _, k := range keys {
		if puts.n[k] != 1 {
			t.Errorf("%s uploaded %d times, want exactly once", k, puts.n[k])
		}
	}
	t.Logf("pool a yielded %d, pool b %d", a.c.yielded.Load(), b.c.yielded.Load())
}

// TestClaimFreedByDeath: an intent whose claim another process holds is not
// uploaded; once the holder lets go without finishing (the kernel drops the
// flock of a killed process: here the descriptor closes without the claim
// file being removed), the pool takes it at once.
func TestClaimFreedByDeath(t *testing.T) {
	f := newPoolFixture(t)
	puts := &countingPuts{n: map[string]int{}}
	o := f.options(t, &hookRemote{Remote: f.remote, put: puts.put})
	dir := NewPool(o).claimDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	held, err := takeClaim(dir, "held")
	if err != nil {
		t.Fatal(err)
	}
	f.entry(t, "held", 64)
	p, _ := startPool(t, o)
	testenv.WaitFor(t, 10*time.Second, "the pool to leave the claimed key alone", func() bool { return p.c.yielded.Load() > 0 })
	if p.Busy() || puts.n["held"] != 0 {
		t.Fatalf("a claimed intent was uploaded (%d) or is in flight", puts.n["held"])
	}
	freed := time.Now()
	held.f.Close() // dies holding it: the file stays, the flock goes
	testenv.WaitFor(t, 10*time.Second, "the freed intent uploaded", idle(p, f.spool))
	t.Logf("taken over %s after the claim was freed", time.Since(freed).Round(time.Millisecond))
	if puts.n["held"] != 1 || spool.Count(f.spool) != 0 {
		t.Fatalf("uploads of the freed key: %d, spool %d", puts.n["held"], spool.Count(f.spool))
	}
}
