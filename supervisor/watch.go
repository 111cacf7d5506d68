package supervisor

import (
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/kunobi-ninja/kache/states"
)

// watchDebounce absorbs the burst of events one update makes (create,
// writes, chmod, rename) so the binary is compared once it has settled.
const watchDebounce = 50 * time.Millisecond

// fileID is what an update changes: any of mtime, size or inode.
type fileID struct {
	mtime int64
	size  int64
	ino   uint64
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path) // follows a symlink swap to the new target
	if err != nil {
		return fileID{}, err
	}
	id := fileID{mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id, nil
}

// watchBinary watches the directory of the daemon's own executable (a
// watch on the file itself is lost when an installer renames a new file
// over it) and sends BinaryChanged once the file at that path differs from
// the one this process started from. It returns the function that stops it.
func (d *Daemon) watchBinary() (stop func()) {
	if !d.o.WatchBinary || d.o.Exe == "" {
		return func() {}
	}
	start, err := statID(d.o.Exe)
	w, werr := fsnotify.NewWatcher()
	if err != nil || werr != nil {
		d.o.Log.Warn("binary watcher disabled", "exe", d.o.Exe, "stat_err", err, "watch_err", werr)
		return func() {}
	}
	if err := w.Add(filepath.Dir(d.o.Exe)); err != nil {
		d.o.Log.Warn("binary watcher disabled", "dir", filepath.Dir(d.o.Exe), "err", err)
		_ = w.Close()
		return func() {}
	}
	if d.o.Epoch != 0 && start.mtime != d.o.Epoch {
		// Replaced between this process's start (when its epoch was read)
		// and the watch: no event will come for that change.
		d.events <- event{states.BinaryChanged, "kache binary " + d.o.Exe + " was replaced while the daemon started"}
	}
	go d.watchLoop(w, start)
	return func() { _ = w.Close() }
}

// watchLoop filters events on the binary's name (and, for a symlink, on
// the link's name), debounces them, then compares the file's identity.
// Chmod events count too: a new mtime alone is a new epoch, and on Linux,
// which refuses writes to a running executable (ETXTBSY), it is the only
// in-place update there is. The stat compare drops the spurious ones.
func (d *Daemon) watchLoop(w *fsnotify.Watcher, start fileID) {
	name := filepath.Base(d.o.Exe)
	var settle <-chan time.Time
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) == name {
				settle = time.After(watchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.o.Log.Warn("binary watcher", "err", err)
		case <-settle:
			settle = nil
			if now, err := statID(d.o.Exe); err == nil && now != start {
				d.send(states.BinaryChanged, "kache binary "+d.o.Exe+" was replaced")
				return
			}
		}
	}
}
