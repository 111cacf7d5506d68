package uploader

import (
	"fmt"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// Every intent handed over is made durable by the group commit, without
// the client waiting for it; the commit batches (fewer fsync rounds than
// intents) and keeps up while uploads are held back.
func TestGroupCommitSyncsEveryHandedIntent(t *testing.T) {
	f := newPoolFixture(t)
	gated := &hookRemote{Remote: f.remote, put: blockUntilCancelled}
	p, _ := startPool(t, f.options(t, gated))
	var entries []Entry
	for i := range 200 {
		entries = append(entries, f.entry(t, fmt.Sprintf("g-%03d", i), 64))
	}
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "200 intents committed", func() bool { return p.Stats().Synced >= 200 })
}
