package cli_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosKillDaemon (scenario a): clients upload files and directories
// in batches while the daemon is SIGKILLed every 0.1 to 0.9 s; clients
// auto-start a new one as they go. After the round a clean daemon settles
// the spool, and every entry must be on the remote with its bytes.
func TestChaosKillDaemon(t *testing.T) {
	fig := newFigures(t, "daemon SIGKILLed at random moments during uploads")
	rng := seeded(1)
	srv := s3test.Start(t)
	rounds, n := pick(1, 20), pick(120, 1000)
	for round := range rounds {
		m := s3Machine(t, srv)
		// Keys are new each round: the remote keeps the last round's entries,
		// and a key already there is (rightly) not uploaded again.
		es, dirs := mixedEntries(t, t.TempDir(), fmt.Sprintf("kill%02d", round), n, uint64(round)*1000)
		killRound(t, m, fig, rng, es)
		m.ok("daemon", "start")
		fig.Lost += account(t, m, srv, es, dirs, pick(60*time.Second, 180*time.Second))
		fig.Rounds++
		fig.Entries += len(es)
		m.ok("daemon", "stop")
		if t.Failed() {
			return
		}
	}
}

// killRound runs 4 clients over batches of 25 entries while a killer
// SIGKILLs the daemon at random moments until the clients are done and
// either the spool is empty or it has killed 3 times after that (the
// daemon keeps uploading the spool after the clients return).
func killRound(t *testing.T, m *machine, fig *figures, rng *rand.Rand, es entries) {
	m.ok("daemon", "start")
	batches := make(chan entries)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				uploadBatch(t, m, fig, b)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	go func() {
		for _, b := range split(es, 25) {
			batches <- b
		}
		close(batches)
	}()
	after := 0
	for {
		select {
		case <-done:
			if m.spool() == 0 || after == 3 {
				return
			}
			after++
			time.Sleep(jitter(rng, 100*time.Millisecond, 900*time.Millisecond))
			if m.killDaemons() > 0 {
				fig.fault()
			}
			m.ok("daemon", "start")
		case <-time.After(jitter(rng, 100*time.Millisecond, 900*time.Millisecond)):
			if m.killDaemons() > 0 {
				fig.fault()
			}
		}
	}
}

// uploadBatch hands a batch over with `upload --from`; it must exit 0
// (a dead daemon is no reason to fail a build) within the command limit.
func uploadBatch(t *testing.T, m *machine, fig *figures, b entries) {
	r, err := m.client(kacheBin, cmdTimeout, "upload", "--from", batchFileIn(t, b))
	fig.waited(r.took)
	if err != nil || r.code != 0 {
		t.Errorf("upload: %v\n%s", err, r)
	}
}

// batchFileIn is batchFile safe to call from several goroutines.
func batchFileIn(t *testing.T, es entries) string {
	batchMu.Lock()
	defer batchMu.Unlock()
	return batchFile(t, es)
}

var batchMu sync.Mutex
