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
// spares instead of unlinking them, and tops them up off the client's path
// when a burst of enqueues took more than uploads gave back (uploads
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
// is gone at once.
func (s *spares) done(path string) error {
	if s.estimate() < spareHigh {
		if err := atomicfile.Retire(path, s.dir); err == nil {
			s.n.Add(1)
			return nil
		}
	}
	return os.Remove(path)
}

// taken tells the keeper that clients may have taken spares.
func (s *spares) taken() { poke(s.wake) }

// keep tops the spares up to spareLow whenever woken, until ctx ends.
func (s *spares) keep(ctx context.Context, log func(msg string, args ...any)) {
	s.top(log)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			s.top(log)
		}
	}
}

func (s *spares) top(log func(msg string, args ...any)) {
	n := s.estimate()
	if n >= spareLow {
		return
	}
	made, err := atomicfile.AddSpares(s.dir, int(spareLow-n))
	s.n.Add(int64(made))
	if err != nil {
		log("cannot make spare intent files; clients create theirs", "dir", s.dir, "err", err)
	}
}
