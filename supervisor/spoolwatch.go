package supervisor

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
	"github.com/kunobi-ninja/kache/uploader"
)

// spoolWatch tells the pool about every intent that lands in the spool,
// so one whose client never reached us (the call failed, the client was
// killed between its write and its call, or it was queued by a draining
// predecessor that then left it) is uploaded by this daemon, not only by
// the next one's replay. Clients rename intents into place, so a Create
// (or a rename into the directory, which inotify reports as Create) of a
// *.json name is the signal. A queue overflow rescans the spool.
//
// The watch is added before the pool's first scan lists the spool (open
// calls openSpoolWatch before startPool): an intent that lands between
// that listing and the watch would otherwise be seen by no one while this
// daemon runs. The kernel queues the events until forward starts reading.
type spoolWatch struct {
	w    *fsnotify.Watcher
	done chan struct{}
}

// openSpoolWatch starts watching the spool directory; nil when it cannot
// (the replay at the next start still finds everything).
func (d *Daemon) openSpoolWatch() *spoolWatch {
	dir := d.o.Paths.SpoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.o.Log.Warn("spool watcher disabled", "dir", dir, "err", err)
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(dir)
	}
	if err != nil {
		d.o.Log.Warn("spool watcher disabled", "dir", dir, "err", err)
		if w != nil {
			_ = w.Close()
		}
		return nil
	}
	return &spoolWatch{w: w, done: make(chan struct{})}
}

// forward hands the watched arrivals to pool until stop.
func (s *spoolWatch) forward(pool *uploader.Pool) {
	if s == nil {
		return
	}
	go func() {
		defer close(s.done)
		spoolEvents(s.w, pool)
	}()
}

// stop closes the watch and waits for forward to return, if it ran.
func (s *spoolWatch) stop(forwarding bool) {
	if s == nil {
		return
	}
	_ = s.w.Close()
	if forwarding {
		<-s.done
	}
}

// spoolEvents forwards intent arrivals to the pool until the watcher closes.
func spoolEvents(w *fsnotify.Watcher, pool *uploader.Pool) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if key, ok := strings.CutSuffix(filepath.Base(ev.Name), ".json"); ok && ev.Has(fsnotify.Create) {
				pool.Notice(key)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			pool.Rescan() // an overflow: something may have been missed
		}
	}
}
