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

// lasting keeps the counters across restarts. The file holds base plus
// what this daemon counted since mark; a ticker goroutine writes it, so
// no upload ever waits on it.
type lasting struct {
	path string
	mu   sync.Mutex
	base totals.Totals   // the totals before this daemon (or at the reset)
	mark totals.Counters // this daemon's counts at the last reset
	last totals.Counters // what the file holds
	stop chan struct{}
	done chan struct{}
}

// startTotals loads the totals, counts the previous generation if it left
// no end in the history (killed or crashed), and starts the writer.
func (d *Daemon) startTotals(prevKilled bool) {
	path := totals.File(d.o.Paths.CacheDir)
	t, err := totals.Load(path)
	if err != nil {
		d.o.Log.Warn("lasting totals unreadable, counting afresh", "err", err)
		t = totals.Totals{Since: time.Now().UTC()}
	}
	if t.Ends == nil {
		t.Ends = map[string]int64{}
	}
	if prevKilled {
		t.Ends["killed"]++
	}
	l := &lasting{path: path, base: t, stop: make(chan struct{}), done: make(chan struct{})}
	d.totals.Store(l)
	d.writeTotals(true)
	go d.totalsLoop(l)
}

func (d *Daemon) totalsLoop(l *lasting) {
	defer close(l.done)
	t := time.NewTicker(totalsEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			d.writeTotals(false)
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

// currentTotals is what the file should say now; nil before startTotals.
func (d *Daemon) currentTotals() *totals.Totals {
	l := d.totals.Load()
	if l == nil {
		return nil
	}
	now := d.counters()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.base
	t.Counters = l.base.Counters.Add(now.Sub(l.mark))
	t.Ends = maps(l.base.Ends)
	return &t
}

// writeTotals writes the file if the counts changed (or force).
func (d *Daemon) writeTotals(force bool) {
	t := d.currentTotals()
	l := d.totals.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !force && t.Counters == l.last {
		return
	}
	t.UpdatedAt = time.Now().UTC()
	if err := totals.Save(l.path, *t); err != nil {
		d.o.Log.Warn("write lasting totals", "err", err)
		return
	}
	l.last = t.Counters
}

// resetTotals zeroes the totals from now on; restarts are forgotten too.
func (d *Daemon) resetTotals() {
	l := d.totals.Load()
	if l == nil {
		return
	}
	now := d.counters()
	l.mu.Lock()
	l.base = totals.Totals{Since: time.Now().UTC(), Ends: map[string]int64{}}
	l.mark = now
	l.mu.Unlock()
	d.writeTotals(true)
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
		l.base.Ends[reason]++
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
