package supervisor

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// quietFor is how long the daemon must have been without requests and
// uploads before it trims its memory.
const quietFor = time.Second

// trimmer gives memory back once the daemon has gone quiet: the Go heap it
// no longer uses (debug.FreeOSMemory), and the pages of its own binary that
// start-up and the last burst of work mapped in (see unmapBinary). An idle
// daemon then holds only what it needs to wait, which is the point of a
// daemon that idles for hours between builds. One atomic swap per request
// re-arms it; while the daemon is quiet nothing runs at all.
type trimmer struct {
	pending atomic.Bool   // work happened since the last trim
	wake    chan struct{} // tells the loop to arm the timer
	t       *time.Timer
}

func newTrimmer() *trimmer {
	tr := &trimmer{wake: make(chan struct{}, 1), t: time.NewTimer(time.Hour)}
	tr.t.Stop()
	return tr
}

// activity notes work, arming the trim once per quiet period.
func (tr *trimmer) activity() {
	if tr.pending.CompareAndSwap(false, true) {
		select {
		case tr.wake <- struct{}{}:
		default:
		}
	}
}

// onTimer runs on the loop when the timer fires: trim if the daemon has
// been quiet for quietFor, else look again when it might have been.
func (d *Daemon) onTrimTimer() {
	last := d.activity.at()
	if t := d.pool.LastActive(); t.After(last) {
		last = t
	}
	if left := quietFor - time.Since(last); left > 0 || d.pool.Busy() {
		d.trim.t.Reset(max(left, quietFor))
		return
	}
	d.trim.pending.Store(false)
	d.evictStore()
	debug.FreeOSMemory()
	if err := unmapBinary(); err != nil {
		d.o.Log.Debug("trim: unmap binary pages", "err", err)
	}
}
