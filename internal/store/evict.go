package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// DefaultCap is the store's size cap when config sets none.
const DefaultCap int64 = 10 << 30

// recentUse protects an entry from eviction: a wrapper touches an entry
// (Lookup) before it restores it, so nothing restored in the last minute,
// and so nothing being restored, is ever evicted.
const recentUse = time.Minute

// staleTemp is the age past which a temp directory in the store is a
// writer's leftover (a killed wrapper) and is removed.
const staleTemp = time.Hour

// Entry is one entry as eviction sees it.
type Entry struct {
	Key  string
	Size int64
	Used time.Time
}

// Usage is the store's size and entry count.
type Usage struct {
	Bytes   int64 `json:"bytes"`
	Entries int   `json:"entries"`
}

// Scan lists the entries with their sizes and last use, oldest first.
func (s Store) Scan() ([]Entry, error) {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, Entry{Key: de.Name(), Size: treeSize(filepath.Join(s.Dir, de.Name()), fi), Used: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Used.Compare(b.Used) })
	return out, nil
}

// Size sums what Scan listed.
func Size(es []Entry) Usage {
	u := Usage{Entries: len(es)}
	for _, e := range es {
		u.Bytes += e.Size
	}
	return u
}

func treeSize(p string, fi fs.FileInfo) int64 {
	if !fi.IsDir() {
		return fi.Size()
	}
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if i, err := d.Info(); err == nil {
				n += i.Size()
			}
		}
		return nil
	})
	return n
}

// Evicted is what one eviction pass removed.
type Evicted struct {
	Entries int
	Bytes   int64
	Left    Usage
}

// Evict removes least recently used entries until the store is within
// capBytes, never one used in the last minute nor one keep holds (an
// entry whose upload is still pending), and removes stale temp
// directories. now is the clock, for tests.
func (s Store) Evict(capBytes int64, keep func(key string) bool, now time.Time) (Evicted, error) {
	s.sweepTemps(now)
	es, err := s.Scan()
	if err != nil {
		return Evicted{}, err
	}
	u := Size(es)
	var ev Evicted
	for _, e := range es {
		if u.Bytes <= capBytes {
			break
		}
		if now.Sub(e.Used) < recentUse || (keep != nil && keep(e.Key)) {
			continue
		}
		if s.Remove(e.Key) == nil {
			ev.Entries++
			ev.Bytes += e.Size
			u.Bytes -= e.Size
			u.Entries--
		}
	}
	ev.Left = u
	return ev, nil
}

func (s Store) sweepTemps(now time.Time) {
	des, _ := os.ReadDir(s.Dir)
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), atomicfile.TempPrefix) {
			continue
		}
		if fi, err := de.Info(); err == nil && now.Sub(fi.ModTime()) > staleTemp {
			os.RemoveAll(filepath.Join(s.Dir, de.Name()))
		}
	}
}

// PruneOld removes the regular files directly in dir not modified for
// age: the wrapper's digest memo, one small file per --extern path ever
// built, which a later reader writes again if it needs it.
func PruneOld(dir string, age time.Duration, now time.Time) (removed int) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		if fi, err := de.Info(); err == nil && now.Sub(fi.ModTime()) > age && os.Remove(filepath.Join(dir, de.Name())) == nil {
			removed++
		}
	}
	return removed
}
