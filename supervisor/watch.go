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
	"github.com/kunobi-ninja/kache/internal/poll"
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
	var dw *dirWatch
	if err == nil {
		dw, err = newDirWatch(dirsOf(paths))
	}
	if err != nil {
		d.o.Log.Warn("binary watcher disabled", "binaries", paths, "err", err)
		return func() {}
	}
	if d.o.Epoch != 0 && maxMtime(start) != d.o.Epoch || d.buildChanged() {
		// Replaced between this process's start (when its epoch was read)
		// and the watch, or between its exec and its start (the file at
		// its path is not the image it runs): no event will come for that
		// change.
		d.events <- event{ev: states.BinaryChanged, cause: "kache binary " + strings.Join(paths, " or ") + " was replaced while the daemon started"}
	}
	dw.run(watchSpec{
		event: func(ev fsnotify.Event) bool {
			return slices.ContainsFunc(paths, func(p string) bool { return sameName(p, ev.Name) })
		},
		settled:  func() { start = d.binaryReplaced(paths, start) },
		debounce: watchDebounce,
		failed:   func(err error) { d.o.Log.Warn("binary watcher", "err", err) },
	})
	return dw.stop
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

// binaryReplaced runs once the watched directories have settled: if the
// file at either path differs from start it asks for a hand-over, and it
// returns the identities to compare the next update with. Chmod events
// count too: a new mtime alone is a new epoch, and on Linux, which refuses
// writes to a running executable (ETXTBSY), it is the only in-place update
// there is. The stat compare drops the spurious ones.
func (d *Daemon) binaryReplaced(paths []string, start []fileID) []fileID {
	p := changed(paths, start)
	if p == "" {
		return start
	}
	// Keep watching: a hand-over may find nothing to do (the same build
	// again) or fail, and the next update counts.
	if now, err := statIDs(paths); err == nil {
		start = now
	}
	d.send(states.BinaryChanged, "kache binary "+p+" was replaced")
	return start
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
	last, _ := statIDs(paths)
	stable := time.Now()
	_ = poll.Until(ctx, poll.Real, installPoll, max, func() bool {
		if now, _ := statIDs(paths); !slices.Equal(now, last) {
			last, stable = now, time.Now()
		}
		return time.Since(stable) >= quiet
	})
}
