package uploader

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// The spare intent files (internal/atomicfile, spare.go): a client writes
// its intent into one of them instead of creating a file, which costs it
// ten times more on some file systems. The daemon keeps between spareLow
// and spareHigh of them: it retires the intents it is done with into the
// spares instead of unlinking them, and tops them up off the client's path,
// in quiet moments, when enqueues took more than uploads gave back (uploads
// paused, or the remote slower than the build).
const (
	spareLow  = 512
	spareHigh = 2048
	// spareRecount is how often the estimate is corrected by counting:
	// clients take spares without telling the daemon.
	spareRecount = time.Second
)

// spares tracks the spare files of one spool.
type spares struct {
	dir     string
	n       atomic.Int64 // estimate: counted, plus retired, plus made
	counted atomic.Int64 // unix nanoseconds of the last count
	wake    chan struct{}
}

func newSpares(spoolDir string) *spares {
	return &spares{dir: spool.SpareDir(spoolDir), wake: make(chan struct{}, 1)}
}

// estimate is the number of spares, counted again when the count is old.
func (s *spares) estimate() int64 {
	if time.Since(time.Unix(0, s.counted.Load())) > spareRecount {
		s.n.Store(int64(atomicfile.CountSpares(s.dir, spareHigh+1)))
		s.counted.Store(time.Now().UnixNano())
	}
	return s.n.Load()
}

// done takes a finished intent out of the spool: retired into the spares
// while there are fewer than spareHigh, else removed. Either way its name
// is gone at once. It runs under the pool's lock, so it only reads the
// estimate; the keeper recounts, outside any lock.
func (s *spares) done(path string) error {
	if s.n.Load() < spareHigh {
		if err := atomicfile.Retire(path, s.dir); err == nil {
			s.n.Add(1)
			return nil
		}
	}
	return os.Remove(path)
}

// taken tells the keeper that clients may have taken spares.
func (s *spares) taken() { poke(s.wake) }

// keep tops the spares up to spareLow in quiet moments, until ctx ends.
func (s *spares) keep(ctx context.Context, log func(msg string, args ...any), worked func()) {
	s.estimate() // the first count, off the start-up path
	t := time.NewTimer(spareQuiet)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			s.estimate()        // recount now and then while clients take spares
			t.Reset(spareQuiet) // busy: wait for a quiet moment again
		case <-t.C:
			more, made := s.top(log)
			if more {
				t.Reset(spareGap)
			} else if made && worked != nil {
				worked() // the last batch: the daemon may trim once quiet
			}
		}
	}
}

// The spares are made only while the daemon is quiet, a batch at a time:
// making one costs as much as a client's create (hundreds of µs on some
// file systems), and a burst of them would compete with the clients and
// with start-up for the same disk and cores. Finished intents, retired
// into spares, are the main source; making them is the fallback for when
// uploads do not finish (the remote down or paused).
const (
	spareQuiet = 500 * time.Millisecond // no enqueue for this long
	spareGap   = 20 * time.Millisecond  // between batches while quiet
	spareBatch = 16
)

// top makes one batch of spares if there are fewer than spareLow, and
// reports whether more are needed and whether it made any.
func (s *spares) top(log func(msg string, args ...any)) (more, made bool) {
	n := s.estimate()
	if n >= spareLow {
		return false, false
	}
	k, err := atomicfile.AddSpares(s.dir, int(min(spareLow-n, spareBatch)))
	s.n.Add(int64(k))
	if err != nil {
		log("cannot make spare intent files; clients create theirs", "dir", s.dir, "err", err)
		return false, k > 0
	}
	return n+int64(k) < spareLow, k > 0
}
