package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"unicode/utf8"
)

// MaxFileSize caps config.toml. A real one is a few hundred bytes; the cap
// keeps KACHE_CONFIG pointed at something huge (or endless) from being read
// into memory by every client and the daemon.
const MaxFileSize = 1 << 20

// readFile returns the config file's bytes, or nil when it does not exist.
// Only a regular file is read (a symlink to one is fine): /dev/zero would
// never end, /dev/stdin or a FIFO would block the build's client, and
// opening some devices has side effects, so the type is checked before the
// open and again on the opened file, in case it was swapped in between.
func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v (fix it or point KACHE_CONFIG at a readable file)", ErrInvalid, err)
	}
	if err := checkRegular(path, st); err != nil {
		return nil, err
	}
	// O_NONBLOCK: if a FIFO replaced the file since the stat, the open
	// returns at once and the check below refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (fix it or point KACHE_CONFIG at a readable file)", ErrInvalid, err)
	}
	defer f.Close()
	return readRegular(path, f)
}

// readRegular reads f, which must be a regular file of at most MaxFileSize
// bytes; the limit holds even if the file grows while it is read.
func readRegular(path string, f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkRegular(path, st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v (fix it or point KACHE_CONFIG at a readable file)", ErrInvalid, path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes, the limit for a config file; point KACHE_CONFIG at your config.toml", ErrInvalid, path, MaxFileSize)
	}
	return data, nil
}

// checkRegular refuses anything but a regular file, naming what it is.
func checkRegular(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%w: %s is %s, not a regular file; point KACHE_CONFIG at a config.toml file (a symlink to one is fine)",
		ErrInvalid, path, fileKind(st.Mode()))
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// checkUTF8 refuses bytes that are not UTF-8, which TOML requires, naming
// the line of the first bad byte.
func checkUTF8(path string, data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	at := firstInvalid(data)
	line := bytes.Count(data[:at], []byte("\n")) + 1
	return fmt.Errorf("%w: %s: line %d: byte %d (0x%02x) is not valid UTF-8; config.toml must be UTF-8 text: save it as UTF-8 (an editor's \"UTF-16\" or \"Latin-1\" encoding will not do)",
		ErrInvalid, path, line, at, data[at])
}

// firstInvalid is the offset of the first byte that is not valid UTF-8.
func firstInvalid(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}
