// Package safesocket holds the checks that keep the daemon's socket and
// its directory private to the user, shared by the daemon that binds it and
// the clients that connect to it.
package safesocket

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// PrepareDir creates the socket's directory 0700 and refuses one that
// another user could use to hijack the socket or plant files beside it.
//
// The rule: the directory must be owned by us and not writable by group or
// others. One exception: a sticky, world-writable directory owned by us or
// root, such as /tmp, is accepted, because the only way a socket lands there
// is a KACHE_SOCKET_PATH (or KACHE_CACHE_DIR) the user chose, and the sticky
// bit stops others from removing or renaming our files. There the socket's
// own 0600 mode and ownership protect it, and Listen refuses to replace a
// socket file that is not ours.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create socket directory %s: %w (set KACHE_SOCKET_PATH to a directory you own)", dir, err)
	}
	lfi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if lfi.Mode()&os.ModeSymlink != 0 {
		// A link another user made (say $TMPDIR/kache-<uid> → /dev/shm)
		// would choose where our socket lives, and could be re-pointed to
		// start a second daemon on the same cache dir.
		if uid, me := Owner(lfi), os.Getuid(); uid != me {
			return fmt.Errorf("socket directory %s is a symlink owned by uid %d, not by you (uid %d): remove it, or set KACHE_SOCKET_PATH to a directory you own", dir, uid, me)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	return checkDirOwner(dir, fi)
}

// checkDirOwner applies PrepareDir's rule to an existing directory.
func checkDirOwner(dir string, fi fs.FileInfo) error {
	uid := Owner(fi)
	me := os.Getuid()
	mode := fi.Mode()
	if mode&os.ModeSticky != 0 && mode.Perm()&0o002 != 0 && (uid == me || uid == 0) {
		return nil
	}
	if uid != me {
		return fmt.Errorf("socket directory %s is owned by uid %d, not by you (uid %d): set KACHE_SOCKET_PATH to a directory you own", dir, uid, me)
	}
	if mode.Perm()&0o022 != 0 {
		return fmt.Errorf("socket directory %s is writable by group or others (mode %#o): run `chmod 700 %s` or set KACHE_SOCKET_PATH to a directory you own", dir, mode.Perm(), dir)
	}
	return nil
}

// Owner is the uid owning fi, or -1 if the platform does not say.
func Owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// Alive reports whether something accepts connections on socket within
// timeout. It proves a listener exists, not that it will answer: a stopped
// (SIGSTOP) daemon still completes connects through the kernel backlog.
func Alive(socket string, timeout time.Duration) bool {
	c, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// PrivateDir creates dir (and its parents) 0700 if missing, and refuses a
// dir that another user owns or that group or others can write: such a
// user could plant intents (kache would upload a file of yours they name),
// store entries (served as cache hits) or files beside the socket. Unlike
// PrepareDir there is no exception for sticky directories: kache's own
// directories are never shared.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w (set KACHE_CACHE_DIR to a directory you own)", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return CheckPrivate(dir, fi)
}

// CheckPrivate applies PrivateDir's rule to an existing directory (or, for
// a file, the same rule: ours, not writable by others).
func CheckPrivate(path string, fi fs.FileInfo) error {
	me := os.Getuid()
	switch uid := Owner(fi); {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink: kache refuses to follow it (remove it, or set KACHE_CACHE_DIR to a directory you own)", path)
	case uid != me && uid != -1:
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d): remove it, or set KACHE_CACHE_DIR to a directory you own", path, uid, me)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %#o): run `chmod go-w %s`", path, fi.Mode().Perm(), path)
	}
	return nil
}
