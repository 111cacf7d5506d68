package uploader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestFetchRemembersConfirmedMisses: many checks of one absent key cost
// the remote one request; an upload of the key makes the next check ask
// again (and hit); the memory expires after absentTTL.
func TestFetchRemembersConfirmedMisses(t *testing.T) {
	f := newPoolFixture(t)
	var gets atomic.Int32
	r := &hookRemote{Remote: f.remote, get: func(context.Context, string) error { gets.Add(1); return nil }}
	p, _ := startPool(t, f.options(t, r))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if found, err := p.Fetch(ctx, "later"); found || err != nil {
				t.Errorf("Fetch(later) = %v, %v; want a miss", found, err)
			}
		}()
	}
	wg.Wait()
	first := gets.Load()
	if found, _ := p.Fetch(ctx, "later"); found {
		t.Fatal("a remembered miss became a hit")
	}
	if gets.Load() != first || first == 0 {
		t.Fatalf("%d remote reads for 21 checks of one absent key (first 20: %d); want the first wave only", gets.Load(), first)
	}
	if _, err := p.Enqueue([]Entry{f.entry(t, "later", 100)}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the upload", idle(p, f.spool))
	if found, err := p.Fetch(ctx, "later"); !found || err != nil {
		t.Fatalf("after its upload Fetch(later) = %v, %v; want a hit", found, err)
	}
	a := newAbsentCache()
	now := time.Now()
	a.now = func() time.Time { return now }
	a.note("k")
	now = now.Add(absentTTL + time.Second)
	if a.absent("k") {
		t.Error("a miss is remembered past absentTTL")
	}
}
