package supervisor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/safesocket"

	"gopkg.in/natefinch/lumberjack.v2"
)

const (
	// LogLimit is the size past which the daemon log is rotated, as the
	// lifecycle document says (2 MiB).
	LogLimit = 2 << 20
	// ljNeverMB is lumberjack's MaxSize in MB: so large (1 TiB) that it
	// never rotates on its own, since its unit is whole megabytes and our
	// limit is 2 MiB counted in bytes, with a marker to write.
	ljNeverMB = 1 << 20
)

// rotatingLog rotates a lumberjack.Logger itself, at a byte limit, and
// opens each new generation with logtail.RotatedMarker. lumberjack keeps one backup
// (daemon-<time>.log beside daemon.log) and removes older ones.
type rotatingLog struct {
	mu    sync.Mutex
	lj    *lumberjack.Logger
	size  int64 // bytes in the current file, ours and whatever was there
	fresh bool  // the file holds nothing but, at most, the marker
	limit int64
	path  string
	known bool // size was read: at the first write, as lumberjack opens lazily
}

// OpenLog returns the daemon's log writer: rotated once the file would grow
// past LogLimit, while the daemon runs (the Rust kache only reset it at
// spawn), keeping exactly one previous generation. It is safe for
// concurrent use, but lumberjack assumes it is the file's only writer, so
// only the daemon may open it. Close leaves lumberjack's mill goroutine
// running (a known lumberjack leak).
func OpenLog(path string) (io.WriteCloser, error) {
	return openLog(path, LogLimit)
}

// openLog is OpenLog with the limit as a parameter, for tests.
func openLog(path string, limit int64) (*rotatingLog, error) {
	if err := checkLogFile(path); err != nil {
		return nil, err
	}
	lj := &lumberjack.Logger{Filename: path, MaxSize: ljNeverMB, MaxBackups: 1}
	return &rotatingLog{lj: lj, limit: limit, path: path}, nil
}

// learnSize reads the file's size at the first write, not at open: a
// successor daemon opens its log while the draining daemon still writes
// (and may rotate) it, and writes only once that daemon has gone.
func (l *rotatingLog) learnSize() {
	if l.known {
		return
	}
	l.known = true
	if fi, err := os.Stat(l.path); err == nil {
		l.size = fi.Size()
	}
	l.fresh = l.size == 0
}

// Write appends p, rotating first if p would take the file past the limit.
// A single write larger than the limit goes whole into a fresh file rather
// than being split mid-line.
func (l *rotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.learnSize()
	if !l.fresh && l.size+int64(len(p)) > l.limit {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.lj.Write(p)
	l.size += int64(n)
	l.fresh = l.fresh && n == 0
	return n, err
}

// rotate moves the current file aside and starts the next with the marker.
func (l *rotatingLog) rotate() error {
	if err := l.lj.Rotate(); err != nil {
		return fmt.Errorf("rotate log %s: %w", l.lj.Filename, err)
	}
	n, err := l.lj.Write([]byte(logtail.RotatedMarker))
	l.size, l.fresh = int64(n), true
	if err != nil {
		return fmt.Errorf("write log %s: %w", l.lj.Filename, err)
	}
	return nil
}

// Close closes the current file.
func (l *rotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lj.Close()
}

// checkLogFile refuses a log that is a symlink (lumberjack would append to
// whatever it points at) or another user's file, and makes one of ours
// private: the log names every path uploaded.
func checkLogFile(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log %s: %w", path, err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0, safesocket.Owner(fi) != os.Getuid():
		return fmt.Errorf("log %s is a symlink or another user's file: remove it, or set KACHE_SOCKET_PATH to a private directory", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("log %s is not a regular file: remove it", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("make log %s private: %w", path, err)
		}
	}
	return nil
}
