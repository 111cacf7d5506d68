package supervisor

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// watchSpool tells the pool about every intent that lands in the spool,
// so one whose client never reached us (the call failed, the client was
// killed between its write and its call) is uploaded by this daemon, not
// only by the next one's replay. Clients rename intents into place, so a
// Create (or a rename into the directory, which inotify reports as Create)
// of a *.json name is the signal. A queue overflow rescans the spool.
func (d *Daemon) watchSpool() (stop func()) {
	dir := d.o.Paths.SpoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.o.Log.Warn("spool watcher disabled", "dir", dir, "err", err)
		return func() {}
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
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.spoolEvents(w)
	}()
	return func() { _ = w.Close(); <-done }
}

// spoolEvents forwards intent arrivals to the pool until the watcher closes.
func (d *Daemon) spoolEvents(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if key, ok := strings.CutSuffix(filepath.Base(ev.Name), ".json"); ok && ev.Has(fsnotify.Create) {
				d.pool.Notice(key)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
			d.pool.Rescan() // an overflow: something may have been missed
		}
	}
}
