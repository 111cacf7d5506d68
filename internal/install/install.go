// Package install finds the two binaries of a kache installation: the
// client (`kache`, which every compile starts, so it links nothing heavy)
// and the daemon (`kache-daemon`, with the S3 SDK, zstd, fsnotify and the
// log writer), installed side by side. Their build epoch is one value: the
// newer of the two mtimes, so replacing either restarts the daemon.
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kunobi-ninja/kache/internal/buildid"
	"github.com/kunobi-ninja/kache/internal/epoch"
)

// DaemonName is the daemon binary's file name.
const DaemonName = "kache-daemon"

// ErrNoDaemon means kache-daemon is not installed beside kache.
var ErrNoDaemon = errors.New("kache-daemon not found")

// DaemonPath is the kache-daemon beside the client at clientExe: in the
// same directory as the path it was invoked by, else beside the file that
// path resolves to (a symlink ~/bin/kache -> ../Cellar/kache/1.2/bin/kache).
func DaemonPath(clientExe string) (string, error) {
	first := filepath.Join(filepath.Dir(clientExe), DaemonName)
	ok, err := executable(first)
	if ok || err != nil {
		return first, err
	}
	if real, err := filepath.EvalSymlinks(clientExe); err == nil {
		if c := filepath.Join(filepath.Dir(real), DaemonName); c != first {
			if ok, err := executable(c); ok || err != nil {
				return c, err
			}
		}
	}
	return "", fmt.Errorf("%w beside %s (looked for %s): install both binaries from one build: `make build` puts them in bin/, `go install ./cmd/...` in $GOBIN", ErrNoDaemon, clientExe, first)
}

// executable reports whether path is an executable regular file; an error
// other than "missing" is returned, naming the file.
func executable(path string) (bool, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %w", ErrNoDaemon, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return false, fmt.Errorf("%w: %s is not an executable file: reinstall kache (`make build` or `go install ./cmd/...`)", ErrNoDaemon, path)
	}
	return true, nil
}

// Epoch is the build epoch of the installation: the newer mtime of the
// client at clientExe and the daemon beside it (0 if neither can be read).
// It costs two stats.
func Epoch(clientExe string) int64 {
	e := epoch.Of(clientExe)
	if d := epoch.Of(filepath.Join(filepath.Dir(clientExe), DaemonName)); d != 0 {
		return max(e, d) // the common case: two stats
	}
	if p, err := DaemonPath(clientExe); err == nil {
		e = max(e, epoch.Of(p))
	}
	return e
}

// Build is the installation's content identity: the Go build ID of the
// kache-daemon beside the client at clientExe ("" if it cannot be read).
// The daemon's code is what a hand-over replaces, so its build is the one
// compared. It reads the first page of one file.
func Build(clientExe string) string {
	id, err := buildid.Read(filepath.Join(filepath.Dir(clientExe), DaemonName))
	if err != nil {
		if p, perr := DaemonPath(clientExe); perr == nil {
			id, _ = buildid.Read(p)
		}
	}
	return id
}
