// Package regfile opens kache's own files with the care the spool gets:
// never following a symlink, never blocking on a FIFO, refusing anything
// that is not a regular file, and reading with a size bound. A FIFO or a
// link to /dev/zero planted where kache keeps a file must give an error
// that says what to do, not a hang or a daemon grown to gigabytes.
package regfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by every refusal of a file that is not a
// regular file (a FIFO, a device, a socket, a directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped when a file is over the bound its reader allows.
var ErrTooLarge = errors.New("larger than kache ever writes it")

// Open opens path for reading: not through a symlink, without blocking,
// and only if it is a regular file. The descriptor is put back in
// blocking mode (reads of a regular file never block anyway).
func Open(path string) (*os.File, fs.FileInfo, error) {
	return open(path, os.O_RDONLY, 0)
}

// OpenAppend opens (creating with perm) path for appending, with the same
// checks as Open.
func OpenAppend(path string, perm fs.FileMode) (*os.File, error) {
	f, _, err := open(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
	return f, err
}

// OpenRW opens (creating with perm) path for reading and writing, with
// the same checks as Open.
func OpenRW(path string, perm fs.FileMode) (*os.File, error) {
	f, _, err := open(path, os.O_RDWR|os.O_CREATE, perm)
	return f, err
}

func open(path string, flag int, perm fs.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symlink: kache does not follow links among its own files; remove it: %w", path, ErrNotRegular)
		}
		if errors.Is(err, syscall.ENXIO) { // a FIFO opened for writing with no reader
			return nil, nil, notRegular(path, fs.ModeNamedPipe)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, fi.Mode())
	}
	return f, fi, nil
}

func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s is a %s, not a regular file: kache never makes one there; remove it: %w", path, kind(m), ErrNotRegular)
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// ReadFile reads path whole, as Open opens it, refusing a file over max
// bytes.
func ReadFile(path string, max int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, %w (at most %d); remove it", path, fi.Size(), ErrTooLarge, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		return nil, fmt.Errorf("%s grew past %d bytes while read: %w", path, max, ErrTooLarge)
	}
	return b, err
}

// Lines calls fn with each line of r (without its newline), skipping any
// line longer than max bytes instead of stopping there: one bad line in a
// log kache appends to must not hide every line after it.
func Lines(r io.Reader, max int, fn func(line []byte)) error {
	br := bufio.NewReaderSize(r, max+1)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if err = skipLine(br); err != nil {
				return eofNil(err)
			}
			continue
		}
		if len(line) > 0 && (err == nil || err == io.EOF) {
			fn(bytes.TrimSuffix(line, []byte("\n")))
		}
		if err != nil {
			return eofNil(err)
		}
	}
}

// skipLine discards the rest of an over-long line.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

func eofNil(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}
