package supervisor

import (
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/totals"
)

// totalsEvery is how often the lasting totals are written when they
// changed: a SIGKILL loses at most this much of the counts.
const totalsEvery = time.Second

// lasting keeps the counters across restarts. The daemon adds to the file
// what it counted since its last write (totals.Update), so a predecessor
// still draining and this daemon can both write it; a goroutine does, so
// no upload ever waits on it. It sleeps with no timer armed until work is
// noted (totalsDirty): an idle daemon makes no wake-ups for it.
type lasting struct {
	path    string
	mu      sync.Mutex       // serialises the writes; guards the fields
	flushed totals.Counters  // this daemon's counts already in the file
	ends    map[string]int64 // generation ends not yet in the file
	dirty   chan struct{}    // work happened: write within totalsEvery
	stop    chan struct{}
	done    chan struct{}
}

// startTotals counts the previous generation if it left no end in the
// history (killed or crashed), writes the file, and starts the writer.
func (d *Daemon) startTotals(prevKilled bool) {
	l := &lasting{path: totals.File(d.o.Paths.CacheDir), ends: map[string]int64{},
		dirty: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if prevKilled {
		l.ends["killed"]++
	}
	d.totals.Store(l)
	d.writeTotals(true)
	go d.totalsLoop(l)
}

func (d *Daemon) totalsLoop(l *lasting) {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case <-l.dirty:
		}
		t := time.NewTimer(totalsEvery)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
		d.writeTotals(false)
		if d.pool.Busy() {
			d.totalsDirty() // uploads still count: look again
		}
	}
}

// totalsDirty notes that the counters may have moved.
func (d *Daemon) totalsDirty() {
	if l := d.totals.Load(); l != nil {
		select {
		case l.dirty <- struct{}{}:
		default:
		}
	}
}

// counters are this daemon's counts since it started.
func (d *Daemon) counters() totals.Counters {
	ps := d.pool.Counters()
	d.mu.Lock()
	builds := d.builds.count
	d.mu.Unlock()
	return totals.Counters{UploadsCompleted: ps.UploadsCompleted, UploadsSkipped: ps.UploadsSkipped,
		UploadsFailed: ps.UploadsFailed, BytesUploaded: ps.BytesUploaded, Downloads: ps.Downloads,
		BytesDownloaded: ps.BytesDownloaded, RemoteHits: ps.RemoteHits, RemoteMisses: ps.RemoteMisses, Builds: builds}
}

// currentTotals is the file plus what this daemon counted since its last
// write; nil before startTotals.
func (d *Daemon) currentTotals() *totals.Totals {
	l := d.totals.Load()
	if l == nil {
		return nil
	}
	now := d.counters()
	l.mu.Lock()
	defer l.mu.Unlock()
	t, err := totals.Load(l.path)
	if err != nil {
		t = totals.Totals{Since: time.Now().UTC()}
	}
	t.Counters = t.Counters.Add(now.Sub(l.flushed))
	t.Ends = maps(t.Ends)
	for k, v := range l.ends {
		t.Ends[k] += v
	}
	return &t
}

// writeTotals adds this daemon's new counts and ends to the file, if there
// are any (or force).
func (d *Daemon) writeTotals(force bool) {
	l := d.totals.Load()
	now := d.counters()
	l.mu.Lock()
	defer l.mu.Unlock()
	delta := now.Sub(l.flushed)
	if !force && delta.IsZero() && len(l.ends) == 0 {
		return
	}
	err := totals.Update(l.path, func(t *totals.Totals) {
		t.Counters = t.Counters.Add(delta)
		for k, v := range l.ends {
			t.Ends[k] += v
		}
	})
	if err != nil {
		d.o.Log.Warn("write lasting totals", "err", err)
		return
	}
	l.flushed = now
	clear(l.ends)
}

// resetTotals zeroes the totals from now on; restarts are forgotten too.
func (d *Daemon) resetTotals() {
	l := d.totals.Load()
	if l == nil {
		return
	}
	now := d.counters()
	l.mu.Lock()
	err := totals.Update(l.path, func(t *totals.Totals) {
		*t = totals.Totals{Since: time.Now().UTC(), Ends: map[string]int64{}}
	})
	if err == nil {
		l.flushed = now
		clear(l.ends)
	}
	l.mu.Unlock()
	if err != nil {
		d.o.Log.Warn("reset lasting totals", "err", err)
		return
	}
	d.o.Log.Info("lasting totals reset")
}

// stopTotals stops the writer and writes the final counts with how this
// daemon ended.
func (d *Daemon) stopTotals(reason string) {
	l := d.totals.Load()
	if l == nil {
		return
	}
	close(l.stop)
	<-l.done
	if reason != "" {
		l.mu.Lock()
		l.ends[reason]++
		l.mu.Unlock()
	}
	d.writeTotals(true)
}

func maps(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// previousKilled: the newest generation in the history before ours left
// no end line. We hold the run lock, so it is not running.
func previousKilled(path string) bool {
	gens, err := history.Load(path)
	return err == nil && len(gens) > 0 && gens[0].End == nil
}
