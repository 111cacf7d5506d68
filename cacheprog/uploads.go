package cacheprog

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// batchWait is how long the uploader gathers puts before handing them to
// the daemon in one call.
const batchWait = 50 * time.Millisecond

// uploads hands placed entries to the daemon in the background, in
// batches, so a put never waits on the daemon or the remote. Each batch's
// intents are written to the spool before the daemon is called, so once
// close returns every entry is either handed over or in the spool.
type uploads struct {
	d      Daemon
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	stopc  chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	batch   map[string]string
	kept    int
	lastErr error
}

func startUploads(d Daemon) *uploads {
	u := &uploads{d: d, kick: make(chan struct{}, 1), stopc: make(chan struct{}), done: make(chan struct{}), batch: map[string]string{}}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	go u.loop()
	return u
}

// add queues key's entry at dir.
func (u *uploads) add(key, dir string) {
	u.mu.Lock()
	u.batch[key] = dir
	u.mu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

func (u *uploads) loop() {
	defer close(u.done)
	for {
		select {
		case <-u.kick:
		case <-u.stopc:
			u.flush()
			return
		}
		t := time.NewTimer(batchWait)
		select {
		case <-t.C:
		case <-u.stopc:
			t.Stop()
		}
		u.flush()
	}
}

// flush hands over what is queued.
func (u *uploads) flush() {
	u.mu.Lock()
	b := u.batch
	u.batch = map[string]string{}
	u.mu.Unlock()
	if len(b) == 0 {
		return
	}
	if err := u.d.Upload(u.ctx, b); err != nil {
		u.mu.Lock()
		u.kept += len(b)
		u.lastErr = err
		u.mu.Unlock()
	}
}

// close hands over the rest, waiting at most wait for the daemon; past
// it the calls are cancelled (the intents are written first and stay in
// the spool). It returns why entries were kept in the spool, if any were.
func (u *uploads) close(wait time.Duration) error {
	close(u.stopc)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-u.done:
	case <-t.C:
		u.cancel()
		<-u.done
	}
	u.cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.kept > 0 {
		return fmt.Errorf("%d uploads kept in the spool for the next daemon: %v", u.kept, u.lastErr)
	}
	return nil
}
