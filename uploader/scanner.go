package uploader

import (
	"github.com/kunobi-ninja/kache/internal/spool"
)

// scanner replays the spool into the window: at start (after the daemon is
// ready, however large the spool), whenever an Enqueue found the window
// full, and whenever an intent appeared without an Enqueue (Notice). It
// stops when the drain begins or the pool is cancelled.
func (p *Pool) scanner() {
	defer p.helpers.Done()
	for {
		select {
		case <-p.scanWake:
		case <-p.closed:
			return
		case <-p.ctx.Done():
			return
		}
		p.mu.Lock()
		again := p.backlog
		p.backlog, p.scanning = false, again
		p.mu.Unlock()
		if !again {
			continue
		}
		n := p.scanOnce()
		p.mu.Lock()
		first := !p.scanned
		p.scanned, p.scanning = true, false
		if first {
			p.replayed = n
		}
		p.touch()
		p.mu.Unlock()
		if first && n > 0 {
			p.log.Info("replayed upload intents", "count", n)
		}
	}
}

// scanOnce walks the spool once, queueing every intent the window lacks,
// waiting for room as it goes. It returns how many it queued.
func (p *Pool) scanOnce() (added int) {
	err := spool.Scan(p.o.SpoolDir, func(key string) bool {
		if !p.waitRoom() {
			return false
		}
		if p.known(key) {
			return true
		}
		in, err := spool.Read(p.o.SpoolDir, p.o.FailedDir, key, p.log)
		if err != nil {
			return true // gone meanwhile, or moved to failed/ with the reason
		}
		p.HoldFor(in.BuildPid) // a daemon started mid-build waits for it too
		p.mu.Lock()
		ok := p.add(Entry{Key: in.Key, Path: in.Path})
		p.afterEnqueue()
		p.mu.Unlock()
		if ok {
			added++
			p.syncer.add([]string{key}) // written by a client that may not have told us
		}
		return true
	})
	if err != nil {
		p.log.Error("cannot read the upload spool", "dir", p.o.SpoolDir, "err", err)
	}
	return added
}

// known reports whether key is queued or in flight.
func (p *Pool) known(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, q := p.queued[key]
	_, f := p.inflight[key]
	return q || f
}

// waitRoom waits until the window has room; false means the pool stops.
func (p *Pool) waitRoom() bool {
	for {
		p.mu.Lock()
		n := len(p.queue)
		p.mu.Unlock()
		if n < queueWindow {
			return true
		}
		select {
		case <-p.room:
		case <-p.closed:
			return false
		case <-p.ctx.Done():
			return false
		}
	}
}

// Replayed reports how many intents the first scan of the spool queued,
// and whether that scan has finished.
func (p *Pool) Replayed() (n int, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replayed, p.scanned
}
