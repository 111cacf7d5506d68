package cacheprog

import (
	"os"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/store"
)

// leases marks the entries a session served as used every so often, so
// the daemon's eviction (which spares entries used in the last minute)
// never removes a file the go command may still read, however long the
// build.
type leases struct {
	st    store.Store
	mu    sync.Mutex
	keys  map[string]struct{}
	stopc chan struct{}
	done  chan struct{}
}

func startLeases(st store.Store, every time.Duration) *leases {
	l := &leases{st: st, keys: map[string]struct{}{}, stopc: make(chan struct{}), done: make(chan struct{})}
	if every <= 0 {
		close(l.done)
		return l
	}
	go l.loop(every)
	return l
}

func (l *leases) add(key string) {
	l.mu.Lock()
	l.keys[key] = struct{}{}
	l.mu.Unlock()
}

func (l *leases) loop(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.renew()
		case <-l.stopc:
			return
		}
	}
}

// renew touches every entry served so far.
func (l *leases) renew() {
	l.mu.Lock()
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	l.mu.Unlock()
	now := time.Now()
	for _, k := range keys {
		_ = os.Chtimes(l.st.Path(k), now, now)
	}
}

func (l *leases) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	<-l.done
}
