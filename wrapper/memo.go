package wrapper

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// The digest memo remembers the digest of each --extern artifact (an
// rlib, rmeta or proc-macro .so in a target directory) with the file's
// stamp. Every crate that depends on it names it, and its key needs the
// digest: without the memo each dependent read the whole file again
// (serde's rlib is 14 MB, named by a dozen crates), on the build's
// critical path, cold and warm alike. With it the first dependent reads
// it and the others do not.
//
// A memo is used only while the file's stamp is unchanged: size, mtime,
// inode and ctime. Any write to the file, or a new file at the path,
// changes the inode or the ctime, which no one can set back. Timestamps
// are coarse (a kernel tick), so a memo is written only for a file whose
// mtime and ctime are at least racyAge old, and whose stamp did not change
// while it was read: a later write then always gets a newer ctime (git's
// "racily clean" rule). A stale digest is never used.

// racyAge is how old a file's times must be for its memo to be kept:
// well past any kernel's timestamp granularity.
const racyAge = 50 * time.Millisecond

// memoDir holds one small file per extern path.
func (c *call) memoDir() string { return filepath.Join(c.o.CacheDir, "wrapper", "digests") }

// memoPath names path's memo by the digest of the path.
func (c *call) memoPath(path string) string {
	h := newHasher("memo")
	h.str(path)
	return filepath.Join(c.memoDir(), h.hex()[:32])
}

// digestAt is path's digest; stamp is its stamp, taken before. An extern's
// comes from the memo when its stamp is unchanged; otherwise the file is
// read, and an extern's digest remembered.
func (c *call) digestAt(path, stamp string) (string, error) {
	if !c.isExtern(path) {
		return fileDigest(path)
	}
	if d, ok := c.recall(path, stamp); ok {
		return d, nil
	}
	d, err := fileDigest(path)
	if err == nil {
		c.remember(path, stamp, d)
	}
	return d, err
}

// recall returns the digest remembered for path if its stamp is still
// stamp.
func (c *call) recall(path, stamp string) (string, bool) {
	b, err := readSmall(c.memoPath(path), 8<<10)
	if err != nil {
		return "", false
	}
	f := strings.Split(string(b), "\n")
	if len(f) != 4 || f[0] != path || f[1] != stamp || len(f[2]) != 64 {
		return "", false
	}
	return f[2], true
}

// remember notes digest, read from path whose stamp was stamp before the
// read, if the file is unchanged since and not racily new. Best effort: a
// memo not written only costs a later read of the file.
func (c *call) remember(path, stamp, digest string) {
	now := time.Now()
	if after, err := fileStamp(path); err != nil || after != stamp || racy(stamp, now) {
		return
	}
	if os.MkdirAll(c.memoDir(), 0o700) != nil {
		return
	}
	_ = atomicfile.WriteFile(c.memoPath(path), []byte(path+"\n"+stamp+"\n"+digest+"\n"), 0o600, atomicfile.ProcessSafe)
}

// racy reports whether a stamp's mtime or ctime is within racyAge of now
// (or unreadable): a write in the same clock tick could keep the stamp.
func racy(stamp string, now time.Time) bool {
	f := strings.Split(stamp, ":")
	if len(f) != 4 {
		return true
	}
	for _, s := range []string{f[1], f[3]} {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil || now.Sub(time.Unix(0, ns)) < racyAge {
			return true
		}
	}
	return false
}

// isExtern reports whether path (absolute) is one of the invocation's
// --extern artifacts; only those are ever in the memo.
func (c *call) isExtern(path string) bool {
	for _, e := range c.inv.Externs {
		if e.Path != "" && c.n.abs(e.Path) == path {
			return true
		}
	}
	return false
}

// fileStamp is a file's size, mtime, inode and ctime.
func fileStamp(path string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d:%d:%d", st.Size, st.Mtim.Nano(), st.Ino, st.Ctim.Nano()), nil
}
