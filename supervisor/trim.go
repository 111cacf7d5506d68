package supervisor

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// quietFor is how long the daemon must have been without requests and
// uploads before it trims its memory: longer than totalsEvery, so the
// last write of the lasting totals (which maps code back in) is over.
const quietFor = 2 * totalsEvery

// trimmer gives memory back once the daemon has gone quiet: the Go heap it
// no longer uses (debug.FreeOSMemory), and the pages of its own binary that
// start-up and the last burst of work mapped in (see unmapBinary). An idle
// daemon then holds only what it needs to wait, which is the point of a
// daemon that idles for hours between builds. One atomic swap per request
// re-arms it; while the daemon is quiet nothing runs at all.
type trimmer struct {
	pending atomic.Bool   // work happened since the last trim
	second  bool          // the one follow-up unmap after a trim is due (loop only)
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
	if d.trim.second && !d.trim.pending.Load() {
		// The runtime's own background work after a trim (the scavenger
		// returning what FreeOSMemory freed) maps code back in: unmap it
		// once more, and then sleep for good.
		d.trim.second = false
		unmapQuiet(d)
		return
	}
	d.trim.pending.Store(false)
	d.evictStore()
	debug.FreeOSMemory()
	unmapQuiet(d)
	d.trim.second = true
	d.trim.t.Reset(quietFor)
}

func unmapQuiet(d *Daemon) {
	if err := unmapBinary(); err != nil {
		d.o.Log.Debug("trim: unmap binary pages", "err", err)
	}
}
