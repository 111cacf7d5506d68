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
type spoolWatch struct{ dw *dirWatch }

// openSpoolWatch starts watching the spool directory; nil when it cannot
// (the replay at the next start still finds everything).
func (d *Daemon) openSpoolWatch() *spoolWatch {
	dir := d.o.Paths.SpoolDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		d.o.Log.Warn("spool watcher disabled", "dir", dir, "err", err)
		return nil
	}
	dw, err := newDirWatch([]string{dir})
	if err != nil {
		d.o.Log.Warn("spool watcher disabled", "dir", dir, "err", err)
		return nil
	}
	return &spoolWatch{dw: dw}
}

// forward hands the watched arrivals to pool until stop: each intent as it
// lands, and a rescan after an overflow (something may have been missed).
func (s *spoolWatch) forward(pool *uploader.Pool) {
	if s == nil {
		return
	}
	s.dw.run(watchSpec{
		event: func(ev fsnotify.Event) bool {
			if key, ok := strings.CutSuffix(filepath.Base(ev.Name), ".json"); ok && ev.Has(fsnotify.Create) {
				pool.Notice(key)
			}
			return false
		},
		failed: func(error) { pool.Rescan() },
	})
}

// stop closes the watch and waits for forward's goroutine, if it ran.
func (s *spoolWatch) stop() {
	if s != nil {
		s.dw.stop()
	}
}
