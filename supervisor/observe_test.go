package supervisor

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/internal/totals"
	"github.com/kunobi-ninja/kache/rpc"
)

// TestDaemonObservability runs an in-process daemon (so -race sees the
// handlers, the totals writer and the uploads together): stats, metrics
// and resets from concurrent clients while an upload is in flight; then the
// totals file and the history hold this generation's end.
func TestDaemonObservability(t *testing.T) {
	r := newRig(t, nil).start()
	r.upload("obs-1")
	if st, err := r.status(); err != nil || len(st.Queue.Uploading) != 1 || st.Queue.Uploading[0].Key != "obs-1" || st.Queue.Uploading[0].Since.IsZero() {
		t.Fatalf("status while obs-1 is held at the remote: %+v, %v; want it listed as uploading", st, err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			c := &rpc.Client{Socket: r.o.Paths.Socket, CallTimeout: 5 * time.Second}
			defer c.Close()
			for range 5 {
				if _, err := c.Metrics(context.Background(), "openmetrics"); err != nil {
					t.Errorf("metrics: %v", err)
				}
				if i == 0 {
					_, _ = c.ResetStats(context.Background())
				} else if _, err := c.Stats(context.Background()); err != nil {
					t.Errorf("stats: %v", err)
				}
			}
		})
	}
	wg.Wait()
	r.remote.open() // after the resets: the upload counts in the totals
	testenv.WaitFor(t, 10*time.Second, "the upload to count in the totals file", func() bool {
		tot, err := totals.Load(totals.File(r.o.Paths.CacheDir))
		return err == nil && tot.Counters.UploadsCompleted == 1
	})
	m, err := r.client.Metrics(context.Background(), "prometheus")
	if err != nil || !strings.Contains(m.Text, "kache_upload_duration_seconds_count 1\n") {
		t.Fatalf("metrics after one upload: %v\n%+v", err, m)
	}
	if _, err := r.client.Metrics(context.Background(), "yaml"); rpc.KindOf(err) != rpc.ErrBadRequest {
		t.Errorf("metrics format yaml: %v, want bad_request", err)
	}
	if _, err := r.client.Shutdown(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	tot, err := totals.Load(totals.File(r.o.Paths.CacheDir))
	if err != nil || tot.Ends["stop"] != 1 || tot.Counters.UploadsCompleted != 1 {
		t.Fatalf("totals at exit = %+v, %v; want one stop and the upload", tot, err)
	}
	gens, err := history.Load(history.File(r.o.Paths.CacheDir))
	if err != nil || len(gens) != 1 || gens[0].End == nil || gens[0].End.Reason != "stop" || len(gens[0].States) != 3 {
		t.Fatalf("history = %+v, %v; want one generation: ready, stop_requested, drain_done, then its end", gens, err)
	}
}
