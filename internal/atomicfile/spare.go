package atomicfile

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Spare files: a directory of files kept to be written again, so that a
// writer on a hot path takes an existing inode instead of allocating one.
// On some file systems creating a file is by far the dearest step of an
// atomic write (ext4 on this project's VM: 290–350 µs for open(O_CREAT), 11
// µs for a rename, 6 µs for a write; docs/benchmarks.md), and the client's
// enqueue pays it once per entry. The daemon keeps the spares: it moves the
// intent files it is done with there (Retire) instead of unlinking them, and
// creates new ones off the client's path (AddSpares).
//
// A spare is taken by renaming it out of the directory to a temp name
// beside the target: exactly one writer wins each spare (rename is atomic;
// the losers get ENOENT and try another), and the temp name marks it as a
// writer's from then on. Its old content is overwritten and cut to the new
// length before the usual Commit, so what a reader sees at the path is
// still the old file or the new one, never a mix. A spare that is not a
// private regular file of ours with one link is dropped and a file created
// as usual: spares are only a speed-up.

// sparePrefix names a spare taken by a writer (see TempAge).
const sparePrefix = TempPrefix + "spare-"

// TempAge is how long ago the temp file at path was last touched by its
// writer, for the cleaners of crashed writers' files: its mtime, except
// for a taken spare, which keeps the mtime of its last use until written;
// the rename that took it set its ctime.
func TempAge(path string) (time.Duration, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	t := fi.ModTime()
	if strings.HasPrefix(filepath.Base(path), sparePrefix) {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			t = changeTime(st)
		}
	}
	return time.Since(t), nil
}

// spareTries is how many spares a writer tries before it creates a file:
// others writing at once may take the ones it listed.
const spareTries = 3

// spareList is about how many names a writer lists from the spares
// directory (one small getdents call on Linux): enough to spread concurrent
// writers across them.
const spareList = 32

// CreateSpare is Create with permissions 0600, taking a file from the
// spares directory when one is there; took says whether one was.
func CreateSpare(path string, mode Durability, spares string) (f *File, took bool, err error) {
	if f := takeSpare(path, mode, spares); f != nil {
		return f, true, nil
	}
	f, err = Create(path, 0o600, mode)
	return f, false, err
}

// WriteFileSpare is WriteFile through CreateSpare.
func WriteFileSpare(path string, data []byte, mode Durability, spares string) error {
	f, _, err := CreateSpare(path, mode, spares)
	return writeAll(f, err, path, data)
}

// takeSpare renames a spare to a temp name beside path and opens it for
// writing from the start, or returns nil.
func takeSpare(path string, mode Durability, spares string) *File {
	names := listSpares(spares) // none when no daemon has made the directory yet
	if len(names) == 0 {
		return nil
	}
	first := rand.IntN(len(names))
	for i := range min(spareTries, len(names)) {
		name := names[(first+i)%len(names)]
		tmp := filepath.Join(filepath.Dir(path), sparePrefix+name)
		if os.Rename(filepath.Join(spares, name), tmp) != nil {
			continue // another writer took it
		}
		if f := openSpare(tmp); f != nil {
			return &File{File: f, path: path, mode: mode, spare: true}
		}
		os.Remove(tmp)
	}
	return nil
}

// openSpare opens a taken spare if it is a regular file of ours with one
// link and no permission for anyone else.
func openSpare(tmp string) *os.File {
	f, err := os.OpenFile(tmp, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0) // a FIFO: ENXIO, not a hang
	if err != nil {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG ||
		st.Mode&0o777 != 0o600 || int(st.Uid) != os.Geteuid() || st.Nlink != 1 {
		f.Close()
		return nil
	}
	return f
}

// cutToWritten drops what a spare held past the new content.
func (f *File) cutToWritten() error {
	n, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		err = f.Truncate(n)
	}
	return err
}

// Retire moves the file at path into the spares directory, to be taken
// by a later CreateSpare, instead of removing it. Like a removal, the name
// is gone at once; the content stays until a writer overwrites it.
func Retire(path, spares string) error {
	err := os.Rename(path, filepath.Join(spares, spareName()))
	if os.IsNotExist(err) {
		if _, serr := os.Lstat(path); serr == nil { // the spares directory is missing
			if err = os.MkdirAll(spares, 0o700); err == nil {
				err = os.Rename(path, filepath.Join(spares, spareName()))
			}
		}
	}
	return err
}

// AddSpares creates n empty private files in the spares directory (made
// if missing) and returns how many it made.
func AddSpares(spares string, n int) (int, error) {
	if err := os.MkdirAll(spares, 0o700); err != nil {
		return 0, err
	}
	for i := range n {
		f, err := os.OpenFile(filepath.Join(spares, spareName()), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return i, err
		}
		f.Close()
	}
	return n, nil
}

// CountSpares counts the spares, up to limit names.
func CountSpares(spares string, limit int) int {
	d, err := os.Open(spares)
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(limit)
	return len(names)
}

var spareSeq atomic.Uint64

// spareName is unique across the processes that make spares.
func spareName() string {
	return strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(spareSeq.Add(1), 36) + "-" + strconv.FormatUint(rand.Uint64()&0xffffff, 36)
}
