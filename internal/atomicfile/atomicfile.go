// Package atomicfile is the one place kache writes a file so that a reader
// sees the old content or the new, never half of either: a temp file in the
// same directory, renamed over the target. Whether the bytes also survive a
// power loss is the caller's choice (Sync), because the cost differs by two
// orders of magnitude: a rename is microseconds, an fsync of the file and
// its directory is about a millisecond.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Durability says how far a committed file is guaranteed to survive.
type Durability int

const (
	// Durable fsyncs the file before the rename and the directory after
	// it: the new content survives a power loss once Commit returns.
	Durable Durability = iota
	// ProcessSafe skips both fsyncs: the content survives the writer's
	// death (SIGKILL at any moment) and is whole or absent, but a power
	// loss soon after may leave the old file, or none.
	ProcessSafe
)

// TempPrefix starts the name of every temp file, so a directory's owner can
// tell (and clean) the leftovers of a crashed writer.
const TempPrefix = ".kache-tmp-"

// File is a file being written; nothing is visible at its path until Commit.
type File struct {
	*os.File
	path  string
	mode  Durability
	done  bool
	spare bool // a reused file (spare.go): cut to what was written at the end
}

// Create opens a temp file beside path with permissions perm. The
// directory must exist: a missing one is an error wrapping fs.ErrNotExist.
func Create(path string, perm fs.FileMode, mode Durability) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if perm != 0o600 { // CreateTemp made it 0600
		if err := f.Chmod(perm); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return &File{File: f, path: path, mode: mode}, nil
}

// Commit makes the written content visible at the path, replacing what was
// there. On error nothing changed at the path and the temp file is gone.
func (f *File) Commit() error { return f.commit(os.Rename) }

// CommitReplace is Commit for a path where a directory may stand (the
// local store, where a key's entry can change from a directory to a file):
// that directory is moved aside and removed (see Place). Durable syncs the
// directory after the rename, as Commit does.
func (f *File) CommitReplace() error { return f.commit(Place) }

// commit finishes the temp file and moves it to the path with move.
func (f *File) commit(move func(from, to string) error) error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.finish()
	if err == nil {
		err = move(f.Name(), f.path)
	}
	if err == nil && f.mode == Durable {
		err = SyncDir(filepath.Dir(f.path))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// TempDir creates an empty directory beside path, named like the temp
// files, for a caller that fills a directory and then Places it.
func TempDir(path string) (string, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), TempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return dir, nil
}

// Place renames tmp (a file or a directory) to dest. A directory cannot be
// renamed over, nor a file over a directory, so an existing dest that
// stops the rename is first moved aside and removed afterwards. If another
// writer placed its own copy in between, that copy is kept and tmp goes:
// both were whole, so either may win.
func Place(tmp, dest string) error {
	err := os.Rename(tmp, dest)
	if err == nil {
		return nil
	}
	if _, serr := os.Lstat(dest); serr != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dest, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", dest, err)
	}
	defer os.RemoveAll(old)
	if err := os.Rename(tmp, dest); err != nil {
		if _, serr := os.Lstat(dest); serr == nil {
			os.RemoveAll(tmp)
			return nil
		}
		return fmt.Errorf("replace %s: %w", dest, err)
	}
	return nil
}

// CommitNew makes the content visible at the path only if nothing is there
// yet: it hard-links the temp file to the path (link(2) fails on an
// existing name, so of two writers exactly one wins, with no window
// between a check and the write) and removes the temp name. An existing
// path is an error wrapping fs.ErrExist. The file system must support hard
// links.
func (f *File) CommitNew() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	defer os.Remove(f.Name()) // the object is the link; the temp name always goes
	if err := f.finish(); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := os.Link(f.Name(), f.path); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if f.mode == Durable {
		if err := SyncDir(filepath.Dir(f.path)); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// finish syncs (if durable) and closes the temp file.
func (f *File) finish() error {
	var err error
	if f.spare {
		err = f.cutToWritten()
	}
	if err == nil && f.mode == Durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort discards the temp file; it is a no-op after Commit, so callers can
// defer it.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to path atomically with permissions perm.
func WriteFile(path string, data []byte, perm fs.FileMode, mode Durability) error {
	f, err := Create(path, perm, mode)
	return writeAll(f, err, path, data)
}

// writeAll writes data to the file Create or CreateSpare gave, and commits.
func writeAll(f *File, err error, path string, data []byte) error {
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs a directory, making the renames and removals in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
