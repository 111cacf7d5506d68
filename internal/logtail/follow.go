// Package logtail reads the daemon log for clients: its last lines, and a
// follower across rotations. The daemon's writer is supervisor's.
package logtail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// followPoll is how often a follower looks for new lines. The client links
// no file-watching library (it would cost every kache start its
// initialisation), and a stat every 100 ms is a cost nobody sees, like
// `tail -F` without inotify.
const followPoll = 100 * time.Millisecond

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

// run prints changes until ctx ends.
func (fl *follower) run(ctx context.Context) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		if err := fl.check(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
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

// RotatedMarker opens every log file that a rotation creates.
const RotatedMarker = "--- log rotated ---\n"
