package uploader

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/kunobi-ninja/kache/internal/spool"
)

// syncer is the spool's group commit. Clients write intents without fsync
// (a rename survives any process's death; an fsync on the compile's path
// would cost a millisecond for a durability the compiler's own unsynced
// output does not have); the daemon makes them durable here, a batch at a
// time: every intent handed over while one batch syncs goes in the next.
// docs/durability.md states the guarantee.
type syncer struct {
	dir     string
	log     *slog.Logger
	wake    chan struct{}
	synced  atomic.Int64
	mu      sync.Mutex
	pending []string
	flushMu sync.Mutex // one batch at a time
}

func newSyncer(dir string, log *slog.Logger) *syncer {
	return &syncer{dir: dir, log: log, wake: make(chan struct{}, 1)}
}

// add schedules keys for the next batch.
func (s *syncer) add(keys []string) {
	s.mu.Lock()
	s.pending = append(s.pending, keys...)
	s.mu.Unlock()
	poke(s.wake)
}

// run commits batches until ctx ends.
func (s *syncer) run(ctx context.Context) {
	for {
		select {
		case <-s.wake:
			s.flush()
		case <-ctx.Done():
			return
		}
	}
}

// flush commits what is pending now.
func (s *syncer) flush() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	keys := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if err := spool.Sync(s.dir, keys); err != nil {
		s.log.Warn("group commit of upload intents", "count", len(keys), "err", err)
	}
	s.synced.Add(int64(len(keys)))
}
