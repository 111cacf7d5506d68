package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// watchBinary watches the directories of the daemon's two binaries, the
// kache client and kache-daemon (a watch on a file itself is lost when an
// installer renames a new file over it), and sends BinaryChanged once the
// file at either path differs from the one this process started with. It
// returns the function that stops it.
func (d *Daemon) watchBinary() (stop func()) {
	paths := d.binaries()
	if !d.o.WatchBinary || len(paths) == 0 {
		return func() {}
	}
	start, err := statIDs(paths)
	w, werr := fsnotify.NewWatcher()
	if err != nil || werr != nil {
		d.o.Log.Warn("binary watcher disabled", "binaries", paths, "stat_err", err, "watch_err", werr)
		if w != nil {
			_ = w.Close()
		}
		return func() {}
	}
	for _, dir := range dirsOf(paths) {
		if err := w.Add(dir); err != nil {
			d.o.Log.Warn("binary watcher disabled", "dir", dir, "err", err)
			_ = w.Close()
			return func() {}
		}
	}
	if d.o.Epoch != 0 && maxMtime(start) != d.o.Epoch || d.buildChanged() {
		// Replaced between this process's start (when its epoch was read)
		// and the watch, or between its exec and its start (the file at
		// its path is not the image it runs): no event will come for that
		// change.
		d.events <- event{states.BinaryChanged, "kache binary " + strings.Join(paths, " or ") + " was replaced while the daemon started"}
	}
	go d.watchLoop(w, paths, start)
	return func() { _ = w.Close() }
}

// binaries are the paths whose replacement makes this daemon stale.
func (d *Daemon) binaries() []string {
	var out []string
	for _, p := range []string{d.o.Exe, d.o.DaemonExe} {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// watchLoop filters events on the binaries' names (and, for a symlink, on
// the link's name), debounces them, then compares the files' identities.
// Chmod events count too: a new mtime alone is a new epoch, and on Linux,
// which refuses writes to a running executable (ETXTBSY), it is the only
// in-place update there is. The stat compare drops the spurious ones.
func (d *Daemon) watchLoop(w *fsnotify.Watcher, paths []string, start []fileID) {
	var settle <-chan time.Time
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if slices.ContainsFunc(paths, func(p string) bool { return sameName(p, ev.Name) }) {
				settle = time.After(watchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.o.Log.Warn("binary watcher", "err", err)
		case <-settle:
			settle = nil
			if p := changed(paths, start); p != "" {
				// Keep watching: a hand-over may find nothing to do (the
				// same build again) or fail, and the next update counts.
				if now, err := statIDs(paths); err == nil {
					start = now
				}
				d.send(states.BinaryChanged, "kache binary "+p+" was replaced")
			}
		}
	}
}

// sameName reports whether an event's path names the watched path.
func sameName(watched, evName string) bool {
	return filepath.Dir(watched) == filepath.Dir(evName) && filepath.Base(watched) == filepath.Base(evName)
}

// changed names the first path whose file differs from start, or "".
func changed(paths []string, start []fileID) string {
	for i, p := range paths {
		if now, err := statID(p); err == nil && now != start[i] {
			return p
		}
	}
	return ""
}

// statIDs stats every path.
func statIDs(paths []string) ([]fileID, error) {
	ids := make([]fileID, len(paths))
	for i, p := range paths {
		id, err := statID(p)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// maxMtime is the epoch a set of binaries has: the newest mtime.
func maxMtime(ids []fileID) int64 {
	var m int64
	for _, id := range ids {
		m = max(m, id.mtime)
	}
	return m
}

// dirsOf lists the distinct directories of paths.
func dirsOf(paths []string) []string {
	var dirs []string
	for _, p := range paths {
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// How long an installation must be left alone before a hand-over starts
// the binaries at its paths: installers copy the client and the daemon one
// after the other, and a successor started between the two copies would
// run the old daemon beside the new client.
const (
	installQuiet     = 500 * time.Millisecond
	installSettleMax = 10 * time.Second
	installPoll      = 100 * time.Millisecond
)

// settleInstall waits until the files at paths have not changed for quiet
// (at most max, or until ctx ends). It polls their stats, only during a
// hand-over.
func settleInstall(ctx context.Context, paths []string, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, _ := statIDs(paths)
	stable := time.Now()
	for time.Since(stable) < quiet && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(installPoll):
		}
		if now, _ := statIDs(paths); !slices.Equal(now, last) {
			last, stable = now, time.Now()
		}
	}
}
