// Package store is kache's local store of cache entries: one directory
// per key under <cache>/store, shared by the Rust wrapper, the go
// command's cache program and the daemon's downloads. One store, one
// policy: entries are placed whole (a temp directory renamed into place),
// served only if they are ours, and evicted least recently used first by
// the daemon while it is idle.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// Store is the store's directory.
type Store struct{ Dir string }

// ErrNotTrusted marks an entry that exists but is not served: not ours, a
// symlink, or writable by others (docs/security.md).
var ErrNotTrusted = errors.New("store entry not trusted")

// Path is where key's entry lives: filepath.Join(s.Dir, key), without
// its Clean (a walk of the whole path, on every lookup) when Dir is clean
// already and key a plain name.
func (s Store) Path(key string) string {
	if plainName(key) && cleanDir(s.Dir) {
		return s.Dir + string(filepath.Separator) + key
	}
	return filepath.Join(s.Dir, key)
}

func plainName(key string) bool {
	return key != "" && key != "." && key != ".." && !strings.ContainsRune(key, filepath.Separator)
}

// cleanDir reports whether filepath.Clean would leave d as it is: no
// empty, "." or ".." element, no trailing separator.
func cleanDir(d string) bool {
	const sep = string(filepath.Separator)
	return d != "" && d[0] != '.' && !strings.HasSuffix(d, sep) && !strings.Contains(d, sep+sep) &&
		!strings.Contains(d, sep+"."+sep) && !strings.Contains(d, sep+".."+sep) &&
		!strings.HasSuffix(d, sep+".") && !strings.HasSuffix(d, sep+"..")
}

// Lookup returns key's entry directory if the store holds it as kache
// would have left it, and marks it used (its mtime is the LRU clock), so
// an entry about to be restored is the newest and the last to be evicted.
func (s Store) Lookup(key string) (string, error) {
	if err := cachekey.Valid(key); err != nil {
		return "", err
	}
	p := s.Path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !Trusted(fi) {
		return "", fmt.Errorf("%w: %s (mode %v)", ErrNotTrusted, p, fi.Mode())
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // best effort: a failed touch only ages the entry
	return p, nil
}

// Trusted reports whether fi is a store entry kache would serve: not a
// symlink, owned by this user, writable by nobody else.
func Trusted(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return fi.Mode()&fs.ModeSymlink == 0 && fi.Mode().Perm()&0o022 == 0 && (!ok || int(st.Uid) == os.Getuid())
}

// Begin makes an empty private directory in the store for an entry of key
// to be written into; Commit places it.
func (s Store) Begin(key string) (string, error) {
	if err := cachekey.Valid(key); err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return atomicfile.TempDir(s.Path(key))
}

// Commit places a directory filled after Begin as key's entry. An entry
// already there wins (both are whole) and tmp is removed.
func (s Store) Commit(key, tmp string) error {
	dest := s.Path(key)
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Lstat(dest); serr == nil {
			return nil
		}
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// Remove drops key's entry (a corrupt one), renaming it away first so a
// concurrent reader sees it whole or not at all.
func (s Store) Remove(key string) error {
	if cachekey.Valid(key) != nil {
		return nil
	}
	gone := filepath.Join(s.Dir, atomicfile.TempPrefix+"gone-"+key)
	if err := os.Rename(s.Path(key), gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}
