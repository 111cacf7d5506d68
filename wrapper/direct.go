package wrapper

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// Direct mode (ccache's model): per invocation shape, kache keeps the
// files and environment variables the last compiles read, with their
// digests. When every file still has its digest (checked by stamp, then by
// content), the entry key is known without starting rustc.

// maxVariants bounds the variants kept per shape: one per recent state of
// the sources (a branch switched back and forth hits both).
const maxVariants = 4

// Variant is what one compile of a shape read.
type Variant struct {
	Files []FileRef `json:"files"`
	Env   []EnvRef  `json:"env"`
}

// Manifest is the variants of one shape, newest first.
type Manifest struct {
	Shape    string    `json:"shape"`
	Variants []Variant `json:"variants"`
}

// manifestPath is the local, mutable manifest of a shape.
func manifestPath(dir, shape string) string { return filepath.Join(dir, shape[:2], shape+".json") }

// readManifest reads a manifest file; a missing or corrupt one is empty.
func readManifest(path string) Manifest {
	var m Manifest
	b, err := readSmall(path, 4<<20)
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// writeManifest puts v first in the shape's manifest. Concurrent writers
// each replace the file whole; the last one wins, which only costs a
// variant.
func writeManifest(path string, m Manifest, v Variant) error {
	vs := []Variant{v}
	for _, old := range m.Variants {
		if len(vs) < maxVariants && !sameFiles(old, v) {
			vs = append(vs, old)
		}
	}
	m.Variants = vs
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600, atomicfile.ProcessSafe)
}

func sameFiles(a, b Variant) bool {
	if len(a.Files) != len(b.Files) || len(a.Env) != len(b.Env) {
		return false
	}
	for i := range a.Files {
		if a.Files[i].Path != b.Files[i].Path || a.Files[i].Digest != b.Files[i].Digest {
			return false
		}
	}
	return true
}

// errChanged says a variant's file no longer has the digest it had.
var errChanged = errors.New("source changed")

// current checks a variant against the files and environment as they are
// now and returns the key they give, with the files' fresh stamps. A file
// whose stamp matches is not read; one whose stamp differs is hashed
// again (a touch without a change still matches).
func (c *call) current(v Variant) (string, []FileRef, error) {
	files := make([]FileRef, len(v.Files))
	for i, f := range v.Files {
		stamp, err := fileStamp(c.n.abs(c.n.denorm(f.Path)))
		if err != nil {
			return "", nil, err
		}
		files[i] = f
		if stamp == f.Stamp {
			continue
		}
		d, err := c.digestAt(c.n.abs(c.n.denorm(f.Path)), stamp)
		if err != nil {
			return "", nil, err
		}
		if d != f.Digest {
			return "", nil, fmt.Errorf("%w: %s", errChanged, f.Path)
		}
		files[i].Stamp = stamp
	}
	env := make([]EnvRef, len(v.Env))
	for i, e := range v.Env {
		env[i] = c.envRef(e.Name)
	}
	return entryKey(c.shape.Hash, files, env), files, nil
}

// readSmall reads a regular file of at most limit bytes without following
// a symlink or blocking on a FIFO.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, limit)
	}
	b := make([]byte, fi.Size())
	if n, err := f.ReadAt(b, 0); n < len(b) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
