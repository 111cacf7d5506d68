package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// followRecheck bounds how long a missed fsnotify event can delay output:
// events are the fast path, this slow re-check the safety net (and the only
// path when the directory cannot be watched).
const followRecheck = time.Second

// FollowLog writes the last n lines of the log to w and, if follow, keeps
// writing what is appended, like `tail -F`: across rotations (the file
// renamed away and a new one created, seen as a new inode) and truncation
// (the size shrinking below what was read). It watches the directory, not
// the file, because a watch on the file is lost when the file is renamed.
// It returns nil when ctx is cancelled.
func FollowLog(ctx context.Context, path string, n int, follow bool, w io.Writer) error {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !follow:
		return fmt.Errorf("no log at %s yet: the daemon has not run with this socket (start it with `kache daemon start`)", path)
	case errors.Is(err, fs.ErrNotExist):
		f = nil // wait for it to appear
	case err != nil:
		return fmt.Errorf("open log: %w", err)
	}
	fl := &follower{path: path, f: f, w: w}
	defer fl.close()
	if f != nil {
		if err := fl.printTail(n); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	return fl.run(ctx)
}

// follower copies one log path to w, reopening it when it is replaced.
type follower struct {
	path string
	f    *os.File // nil while the file does not exist
	w    io.Writer
}

// printTail positions f at the start of its last n lines and prints them.
func (fl *follower) printTail(n int) error {
	off, _, err := tailOffset(fl.f, n)
	if err != nil {
		return fmt.Errorf("read log %s: %w", fl.path, err)
	}
	if _, err := fl.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("read log %s: %w", fl.path, err)
	}
	return fl.copy()
}

// run waits for changes and prints them until ctx ends.
func (fl *follower) run(ctx context.Context) error {
	dw := newDirWatch(filepath.Dir(fl.path))
	defer dw.close()
	tick := time.NewTicker(followRecheck)
	defer tick.Stop()
	base := filepath.Base(fl.path)
	for {
		if err := fl.check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case ev := <-dw.events():
			if filepath.Base(ev.Name) != base {
				continue
			}
		case <-dw.errors(): // e.g. queue overflow: re-check now
		case <-tick.C:
			dw.retry()
		}
	}
}

// check prints what was appended, then switches to a replaced file (after
// draining the old one, which may have got lines before the rename) or
// rewinds a truncated one.
func (fl *follower) check() error {
	if err := fl.copy(); err != nil {
		return err
	}
	fi, err := os.Stat(fl.path)
	if err != nil {
		return nil // renamed away and not yet recreated: wait
	}
	if fl.f == nil {
		return fl.reopen()
	}
	cur, err := fl.f.Stat()
	if err != nil || !os.SameFile(cur, fi) {
		return fl.reopen()
	}
	if pos, err := fl.f.Seek(0, io.SeekCurrent); err == nil && fi.Size() < pos {
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind log %s: %w", fl.path, err)
		}
		return fl.copy()
	}
	return nil
}

// reopen drops the old file and prints the new one from its start.
func (fl *follower) reopen() error {
	fl.close()
	f, err := os.Open(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fl.f = f
	return fl.copy()
}

// copy prints from the current position to the end of the file.
func (fl *follower) copy() error {
	if fl.f == nil {
		return nil
	}
	if _, err := io.Copy(fl.w, fl.f); err != nil {
		return fmt.Errorf("follow log %s: %w", fl.path, err)
	}
	return nil
}

// close closes the file being followed, if any.
func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// dirWatch is an fsnotify watch on a directory that may not exist yet. Its
// channel is nil (never ready) while there is no watch.
type dirWatch struct {
	dir string
	w   *fsnotify.Watcher
}

// newDirWatch watches dir if it can; otherwise retry tries again later.
func newDirWatch(dir string) *dirWatch {
	dw := &dirWatch{dir: dir}
	dw.retry()
	return dw
}

// retry sets the watch up if it is not, e.g. once the directory exists.
func (dw *dirWatch) retry() {
	if dw.w != nil {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	if err := w.Add(dw.dir); err != nil {
		w.Close()
		return
	}
	dw.w = w
}

// events is the watch's event channel, or nil if there is no watch.
func (dw *dirWatch) events() <-chan fsnotify.Event {
	if dw.w == nil {
		return nil
	}
	return dw.w.Events
}

// errors is the watch's error channel, or nil. It must be read: fsnotify
// blocks its event goroutine until an error is taken.
func (dw *dirWatch) errors() <-chan error {
	if dw.w == nil {
		return nil
	}
	return dw.w.Errors
}

// close stops the watch.
func (dw *dirWatch) close() {
	if dw.w != nil {
		dw.w.Close()
	}
}

// tailOffset returns where the last n lines of f begin, and f's size. A
// newline as the file's last byte ends the last line rather than starting
// an empty one. It reads backwards in chunks, so the cost is the tail's.
func tailOffset(f *os.File, n int) (off, size int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	if n <= 0 {
		return size, size, nil
	}
	buf := make([]byte, 32<<10)
	seen := 0
	for pos := size; pos > 0; {
		start := max(pos-int64(len(buf)), 0)
		b := buf[:pos-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' && start+int64(i) != size-1 {
				if seen++; seen == n {
					return start + int64(i) + 1, size, nil
				}
			}
		}
		pos = start
	}
	return 0, size, nil
}
