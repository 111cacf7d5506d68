// Package procid tells a kache daemon from any other process, so that
// `kache daemon restart` signals only what it has proven is a daemon of this
// user for this socket, never a process that reused a stale pid.
package procid

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kunobi-ninja/kache/config"
)

// The binaries' names: the client, and the daemon it execs.
const (
	ClientName = "kache"
	DaemonName = "kache-daemon"
)

// ProcInfo identifies a process well enough to tell a kache daemon from an
// unrelated process that reused its pid: StartTime changes with every new
// process, so (Pid, StartTime) names one process for good.
type ProcInfo struct {
	Pid, UID  int
	Exe       string
	Args      []string
	StartTime uint64 // Linux: clock ticks after boot; macOS: µs since the epoch
}

// FindDaemons lists this user's daemon processes that serve
// socket, for `kache daemon restart` to stop. Processes that vanish or
// cannot be read while we look are skipped. The caller's own process is
// included if it matches.
func FindDaemons(socket string) ([]ProcInfo, error) {
	pids, err := userPids(os.Getuid())
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []ProcInfo
	for _, pid := range pids {
		if info, ok := IsOurDaemon(pid, socket); ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// IsOurDaemon reports whether pid is, right now, a kache daemon of this
// user serving socket: its argv is `<…/kache> daemon run …` and its
// environment resolves to the same socket. A pid taken from a stale state
// file must pass this before it is signalled, since the pid may now belong
// to anything. Compare StartTime again just before a SIGKILL.
func IsOurDaemon(pid int, socket string) (ProcInfo, bool) {
	info, err := Inspect(pid)
	if err != nil || info.UID != os.Getuid() || !isDaemonRun(info) {
		return info, false
	}
	env, cwd, err := procEnv(pid)
	if err != nil {
		return info, false
	}
	return info, targetsSocket(env, cwd, socket)
}

// isDaemonRun matches the daemon's argv: `<…/kache-daemon> run …`, or
// `<…/kache> daemon run …` (what a service manager starts, before it execs
// kache-daemon, and what daemons of earlier versions ran as), by argv[0] or
// by executable, so a renamed-away binary ("kache (deleted)" after an
// update) still counts.
func isDaemonRun(p ProcInfo) bool {
	named := func(want string, s ...string) bool {
		for _, v := range s {
			if filepath.Base(strings.TrimSuffix(v, " (deleted)")) == want {
				return true
			}
		}
		return false
	}
	switch {
	case len(p.Args) >= 2 && p.Args[1] == "run" && named(DaemonName, p.Args[0], p.Exe):
		return true
	case len(p.Args) >= 3 && p.Args[1] == "daemon" && p.Args[2] == "run":
		return named(ClientName, p.Args[0], p.Exe)
	}
	return false
}

// targetsSocket resolves the socket a process with this environment uses,
// as config does, and compares it with socket. A relative KACHE_CACHE_DIR is
// taken against the process's working directory, not ours.
func targetsSocket(env []string, cwd, socket string) bool {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if d := vars["KACHE_CACHE_DIR"]; d != "" && !filepath.IsAbs(d) && cwd != "" {
		vars["KACHE_CACHE_DIR"] = filepath.Join(cwd, d)
	}
	p, err := config.ResolvePaths(func(k string) string { return vars[k] })
	return err == nil && canonPath(p.Socket) == canonPath(socket)
}

// canonPath resolves symlinks in the directory part, so /tmp and a symlink
// to it name the same socket.
func canonPath(p string) string {
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, filepath.Base(p))
}
