package cacheprog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/store"
)

// KeyPrefix starts the store key of every go command entry, a namespace
// apart from the Rust wrapper's keys (hex digests and "rustm-").
const KeyPrefix = "go-"

// Key is the store and remote key of an ActionID.
func Key(actionID []byte) string { return KeyPrefix + hex.EncodeToString(actionID) }

// object is an entry as a get answers it: the file holding the object
// (DiskPath), its OutputID, size and put time.
type object struct {
	path     string
	outputID []byte
	size     int64
	time     time.Time
}

// lookup returns key's entry from the store: a directory holding one
// regular file, named by the hex of its OutputID, whose content is the
// object. An entry of another shape is removed and is a miss. The entry
// is read with the fewest calls that tell its shape (its names, then the
// one file's lstat): every warm get takes this path.
func lookup(st store.Store, key string) (object, bool) {
	dir, err := st.Lookup(key)
	if err != nil {
		return object{}, false
	}
	names, err := readNames(dir)
	if err != nil {
		return object{}, false // removed meanwhile
	}
	o, err := entryObject(dir, names)
	if err != nil {
		_ = st.Remove(key)
		return object{}, false
	}
	return o, true
}

// readNames returns the names in dir (at most two: an entry holds one),
// without the os.File, sorting and DirEntry values of os.ReadDir.
func readNames(dir string) ([]string, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var buf [2048]byte
	var names []string
	for len(names) < 2 {
		n, err := syscall.ReadDirent(fd, buf[:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	return names, nil
}

func entryObject(dir string, names []string) (object, error) {
	if len(names) != 1 {
		return object{}, fmt.Errorf("entry %s: want one file", dir)
	}
	out, err := hex.DecodeString(names[0])
	if err != nil || len(out) == 0 || len(out) > maxActionID {
		return object{}, fmt.Errorf("entry %s: %q is not an OutputID", dir, names[0])
	}
	path := dir + string(filepath.Separator) + names[0]
	fi, err := os.Lstat(path)
	if err != nil {
		return object{}, err
	}
	if !fi.Mode().IsRegular() {
		return object{}, fmt.Errorf("entry %s: want one file", dir)
	}
	return object{path: path, outputID: out, size: fi.Size(), time: fi.ModTime()}, nil
}

// pending is a put being written: into a new entry's directory in the
// store, or, when the store fails, into a scratch file.
type pending struct {
	st      store.Store
	key     string
	tmp     string // the entry's directory before it is placed; "" if none
	f       *os.File
	n       int64 // bytes written to f
	scratch func() (*os.File, error)
	inStore bool
	err     error // why the store was given up, for the record
}

// begin starts a put of key with OutputID out; with no usable store it
// writes to scratch from the first byte.
func begin(st store.Store, useStore bool, key string, out []byte, scratch func() (*os.File, error)) (*pending, error) {
	p := &pending{st: st, key: key, scratch: scratch}
	if useStore {
		p.err = p.openStore(hex.EncodeToString(out))
	} else {
		p.err = errors.New("no store")
	}
	if p.inStore {
		return p, nil
	}
	f, err := scratch()
	if err != nil {
		return nil, fmt.Errorf("store: %v; scratch: %w", p.err, err)
	}
	p.f = f
	return p, nil
}

func (p *pending) openStore(name string) error {
	tmp, err := p.st.Begin(p.key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(tmp, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	p.tmp, p.f, p.inStore = tmp, f, true
	return nil
}

// Write writes to the entry; when the store fails mid-body, what was
// written moves to a scratch file and the body goes on there.
func (p *pending) Write(b []byte) (int, error) {
	m, err := p.f.Write(b)
	p.n += int64(m)
	if err == nil {
		return len(b), nil
	}
	if !p.inStore {
		return m, err
	}
	p.err = err
	if ferr := p.fallBack(); ferr != nil {
		return m, fmt.Errorf("store: %v; scratch: %w", err, ferr)
	}
	k, err := p.Write(b[m:])
	return m + k, err
}

// fallBack copies the bytes written so far to a scratch file and drops
// the entry's directory.
func (p *pending) fallBack() error {
	g, err := p.scratch()
	if err != nil {
		return err
	}
	_, err = p.f.Seek(0, io.SeekStart)
	if err == nil {
		_, err = io.CopyN(g, p.f, p.n)
	}
	p.f.Close()
	os.RemoveAll(p.tmp)
	p.f, p.tmp, p.inStore = g, "", false
	if err != nil {
		g.Close()
		return err
	}
	return nil
}

// abort drops whatever was written.
func (p *pending) abort() {
	p.f.Close()
	if p.tmp != "" {
		os.RemoveAll(p.tmp)
	}
}

// finish closes the object and places the entry. It returns the object's
// path and whether this put placed a store entry (to be uploaded). An
// entry of the same key already placed with the same object is kept; one with
// another object is replaced (the newest put wins, as in the go
// command's own cache); if placing fails the object is served from where
// it was written, and dropped when the session ends (leftover).
func (p *pending) finish() (path string, placed bool, leftover string, err error) {
	name := filepath.Base(p.f.Name())
	if err := p.f.Close(); err != nil && p.inStore {
		os.RemoveAll(p.tmp)
		return "", false, "", err
	}
	if !p.inStore {
		return p.f.Name(), false, "", nil
	}
	dest := p.st.Path(p.key)
	if os.Rename(p.tmp, dest) == nil {
		return filepath.Join(dest, name), true, "", nil
	}
	if o, ok := lookup(p.st, p.key); ok && filepath.Base(o.path) == name {
		os.RemoveAll(p.tmp)
		return o.path, false, "", nil
	}
	_ = p.st.Remove(p.key)
	if err := os.Rename(p.tmp, dest); err != nil {
		p.err = err
		return filepath.Join(p.tmp, name), false, p.tmp, nil
	}
	return filepath.Join(dest, name), true, "", nil
}
