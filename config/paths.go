// Package config resolves where kache keeps its files and what the user set
// in config.toml and the environment. Precedence: environment, then file,
// then default. It lives apart from cli and supervisor because both the
// client and the daemon need the same answers.
package config

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MaxSocketPath is the longest usable Unix socket path on this OS, in bytes
// (sun_path less its terminating NUL).
func MaxSocketPath() int {
	if runtime.GOOS == "darwin" {
		return 103
	}
	return 107
}

// Paths are the files of one daemon. All siblings of the socket share its
// directory so that a custom KACHE_SOCKET_PATH moves them together.
type Paths struct {
	CacheDir string // KACHE_CACHE_DIR or the OS cache dir + kache
	Socket   string // KACHE_SOCKET_PATH or <CacheDir>/daemon.sock, or ShortSocket's
	// ShortSocket says that <CacheDir>/daemon.sock was over the OS limit
	// and Socket is a short stand-in (see shortSocket); status shows it.
	ShortSocket bool
}

// ErrSocketPath marks a socket path that cannot be used.
var ErrSocketPath = errors.New("unusable socket path")

// ResolvePaths reads KACHE_CACHE_DIR and KACHE_SOCKET_PATH.
func ResolvePaths(getenv func(string) string) (Paths, error) {
	cache := getenv("KACHE_CACHE_DIR")
	if cache == "" {
		base, err := userCacheDir(getenv)
		if err != nil {
			return Paths{}, fmt.Errorf("find cache dir: %w (set KACHE_CACHE_DIR)", err)
		}
		cache = filepath.Join(base, "kache")
	}
	cache, err := filepath.Abs(cache)
	if err != nil {
		return Paths{}, fmt.Errorf("KACHE_CACHE_DIR: %w", err)
	}
	p := Paths{CacheDir: cache, Socket: filepath.Join(cache, "daemon.sock")}
	s := getenv("KACHE_SOCKET_PATH")
	switch {
	case s != "" && !filepath.IsAbs(s):
		return Paths{}, fmt.Errorf("%w: KACHE_SOCKET_PATH=%q is not absolute; set it to an absolute path such as /tmp/kache-$UID.sock", ErrSocketPath, s)
	case s != "":
		p.Socket = filepath.Clean(s) // the user's choice: too long is an error
	case len(p.Socket) > MaxSocketPath():
		p.Socket, p.ShortSocket = shortSocket(getenv, cache), true
	}
	if n := len(p.Socket); n > MaxSocketPath() {
		return Paths{}, fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit of Unix sockets on %s; set KACHE_SOCKET_PATH to a shorter absolute path (for example /tmp/kache-%d.sock)",
			ErrSocketPath, p.Socket, n, MaxSocketPath(), runtime.GOOS, os.Getuid())
	}
	return p, nil
}

// shortSocket stands in for a default socket path over the OS limit (a
// deep KACHE_CACHE_DIR): <dir>/kache-<uid>/<hash of the cache dir>.sock,
// with dir $XDG_RUNTIME_DIR (private to the user by design) or else the
// temp dir. The kache-<uid> directory is created 0700 and checked like any
// socket directory (safesocket.PrepareDir), so another user who made it
// first is refused, never trusted. The hash keeps two cache dirs apart.
func shortSocket(getenv func(string) string, cache string) string {
	base := getenv("XDG_RUNTIME_DIR")
	if base == "" || !filepath.IsAbs(base) {
		base = os.TempDir()
	}
	h := fnv.New64a()
	h.Write([]byte(cache))
	return filepath.Join(base, fmt.Sprintf("kache-%d", os.Getuid()), fmt.Sprintf("%016x.sock", h.Sum64()))
}

// userCacheDir is os.UserCacheDir driven by getenv, so tests can steer it.
func userCacheDir(getenv func(string) string) (string, error) {
	if runtime.GOOS == "darwin" {
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Caches"), nil
		}
		return "", errors.New("$HOME is not set")
	}
	if x := getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return x, nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache"), nil
	}
	return "", errors.New("neither $XDG_CACHE_HOME nor $HOME is set")
}

// Dir is the directory holding the socket and its siblings.
func (p Paths) Dir() string { return filepath.Dir(p.Socket) }

// sibling names a file beside the socket, sharing its base name so that two
// daemons on two sockets in one directory never share files.
func (p Paths) sibling(suffix string) string {
	return strings.TrimSuffix(p.Socket, ".sock") + suffix
}

// RunLock is flocked by the running daemon for its whole life.
func (p Paths) RunLock() string { return p.sibling(".run.lock") }

// SpawnLock serialises `daemon start` so concurrent starts spawn one child.
func (p Paths) SpawnLock() string { return p.sibling(".lock") }

// NextLock is held by a successor daemon waiting for a draining one to
// exit, so that many clients arriving during a drain start one successor.
func (p Paths) NextLock() string { return p.sibling(".next.lock") }

// StateFile holds the running daemon's pid, epoch and state.
func (p Paths) StateFile() string { return p.sibling(".state.json") }

// ExitFile holds the last daemon's exit record: why it stopped, what the
// drain did. `daemon stop` reads it once the run lock is free.
func (p Paths) ExitFile() string { return p.sibling(".exit.json") }

// LogFile is `<socket>.log` as the lifecycle document names it: daemon.log
// beside daemon.sock.
func (p Paths) LogFile() string { return p.sibling(".log") }

// SpoolDir holds upload intents, written by clients before they send.
func (p Paths) SpoolDir() string { return filepath.Join(p.CacheDir, "upload-queue") }

// FailedDir holds intents that failed permanently, with their error.
func (p Paths) FailedDir() string { return filepath.Join(p.SpoolDir(), "failed") }

// StoreDir is the local store that remote checks and prefetches fill.
func (p Paths) StoreDir() string { return filepath.Join(p.CacheDir, "store") }

// EventsFile is the append-only log of transfer events.
func (p Paths) EventsFile() string { return filepath.Join(p.CacheDir, "events.jsonl") }

// ClientBreakerFile records failed auto-starts for the crash-loop breaker.
func (p Paths) ClientBreakerFile() string { return p.sibling(".autostart.json") }

// RestartFile records the last `kache daemon restart`: why, and which tier
// it was trying. The daemon it brings up reads it into its status.
func (p Paths) RestartFile() string { return p.sibling(".restart.json") }
