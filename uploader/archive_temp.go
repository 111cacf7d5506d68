package uploader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// archiveTempPrefix names the temp archives of directory uploads, so that
// ones left by a killed daemon are recognisable and removed at the next
// pool start (RemoveStaleArchives).
const archiveTempPrefix = "kache-archive-"

// createArchiveTemp makes the temp archive for key in dir ("" means
// os.TempDir()), creating dir if it was deleted. Failing that is a
// LocalError: the machine's fault, not the remote's.
func createArchiveTemp(dir, key string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	pattern := archiveTempPrefix + key + "-*" + ArchiveSuffix
	f, err := os.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, pattern)
		}
	}
	if err != nil {
		return nil, &LocalError{Err: fmt.Errorf("create temp archive in %s: %w (it must be a writable directory with free space)", dir, err)}
	}
	return f, nil
}

// localWriter records the first error of writing the temp archive, so that
// it can be told apart from an error reading the source.
type localWriter struct {
	w   *os.File
	n   int64
	err error
}

func (l *localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.n += int64(n)
	if err != nil && l.err == nil {
		l.err = err
	}
	return n, err
}

// RemoveStaleArchives deletes the temp archives in dir: at pool start none
// is in use (one daemon owns the cache dir), so any there was left by a
// daemon that was killed while archiving. It returns how many it removed.
func RemoveStaleArchives(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), archiveTempPrefix) && os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}
