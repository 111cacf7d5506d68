package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/regfile"
)

const (
	readBudget = 4 << 20 // bytes read per refresh at most; the rest waits for the next
	firstTail  = 4 << 20 // the first refresh reads only the file's last bytes: the current build
	readChunk  = 64 << 10
)

// tail reads a log that writers append to, a bounded amount per poll,
// from the offset the last poll reached. A replaced file (another inode:
// the wrappers rotate the log to <path>.1) is read from its start, after
// the rest of the old one is read from <path>.1 if it is still that
// file; a truncated one (smaller than the offset) from its start. Only
// a regular file is read, opened without following a symlink and without
// blocking (a FIFO at the path is refused, never waited on), and only
// up to the size it had when opened.
type tail struct {
	path   string
	budget int64
	id     fileID // the file read so far; zero before one was opened
	off    int64
	seen   bool // a poll ran: a file appearing after it is read whole
	lines  lines
}

type fileID struct{ dev, ino uint64 }

func (t *tail) poll(fn func(buildlog.Record)) error {
	first := !t.seen
	t.seen = true
	f, fi, err := regfile.Open(t.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f != nil {
		defer f.Close()
	}
	id := fileID{}
	if fi != nil {
		id = idOf(fi)
	}
	if id != t.id && t.id != (fileID{}) && t.readOld(fn) {
		return nil // the new file waits until the old one is read
	}
	switch {
	case f == nil:
		t.restart(fileID{}, 0)
		return nil
	case id != t.id:
		t.restart(id, 0)
		if first {
			t.restart(id, max(0, fi.Size()-firstTail))
		}
	case fi.Size() < t.off:
		t.restart(id, 0)
	}
	return t.read(f, fi.Size(), fn)
}

// read reads f from the offset on, at most budget bytes and not past end.
func (t *tail) read(f *os.File, end int64, fn func(buildlog.Record)) error {
	n, err := readRange(f, t.off, min(end, t.off+t.budget), func(b []byte) { t.lines.feed(b, fn) })
	t.off += n
	return err
}

// restart reads id from off on; a line cut by off is skipped.
func (t *tail) restart(id fileID, off int64) {
	t.id, t.off = id, off
	t.lines.reset(off > 0)
}

// readOld reads on in the file read so far, if <path>.1 is it (rotated
// away) and holds more; it reports whether it read anything.
func (t *tail) readOld(fn func(buildlog.Record)) bool {
	f, fi, err := regfile.Open(t.path + ".1")
	if err != nil {
		return false
	}
	defer f.Close()
	if idOf(fi) != t.id || fi.Size() <= t.off {
		return false
	}
	_ = t.read(f, fi.Size(), fn)
	return true
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: st.Ino}
	}
	return fileID{}
}

// readRange hands fn the bytes of f from off to end, a chunk at a time,
// and returns how many it read.
func readRange(f *os.File, off, end int64, fn func([]byte)) (int64, error) {
	buf := make([]byte, min(readChunk, max(end-off, 0)))
	var n int64
	for off+n < end {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), end-off-n)], off+n)
		fn(buf[:k])
		n += int64(k)
		if errors.Is(err, io.EOF) || k == 0 {
			return n, nil // shrank under us: the next poll sees the truncation
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// lines cuts bytes into lines and decodes each as a record; a line longer
// than buildlog.MaxLine, or the one an offset cut, is skipped.
type lines struct {
	part []byte
	skip bool // until the next newline
}

func (l *lines) reset(skip bool) {
	l.part, l.skip = l.part[:0], skip
}

func (l *lines) feed(b []byte, fn func(buildlog.Record)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if !l.skip && len(l.part)+len(chunk) > buildlog.MaxLine {
			l.part, l.skip = l.part[:0], true
		}
		if !l.skip {
			l.part = append(l.part, chunk...)
		}
		if i < 0 {
			return
		}
		var r buildlog.Record
		if !l.skip && json.Unmarshal(l.part, &r) == nil {
			fn(r)
		}
		l.reset(false)
		b = b[i+1:]
	}
}
