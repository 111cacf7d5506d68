package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/config"
)

// ErrChildExited means the spawned daemon exited before it was ready. The
// error also wraps the *exec.ExitError, when there is one, for the status.
var ErrChildExited = errors.New("daemon exited before it was ready")

// SpawnOptions describe the background daemon to start.
type SpawnOptions struct {
	Exe     string   // absolute path of the kache binary
	Args    []string // arguments after argv[0], e.g. daemon run
	Env     []string // the child's environment; nil inherits ours
	LogPath string   // the child's stderr is appended here
}

// Child is a spawned daemon. Done closes once it has exited and been
// reaped; Err then returns how it exited (nil for status 0, and nil while
// it still runs).
type Child struct {
	Process *os.Process
	Done    <-chan struct{}
	Err     func() error
}

// Spawn starts the daemon detached: in its own session, so a Ctrl-C in the
// terminal that ran `kache daemon start` never reaches it (the Rust kache's
// fault 7); stdin and stdout on /dev/null; stderr appended to the log, so
// startup errors and runtime crashes land where `kache daemon log` looks.
// The parent does not wait, but a goroutine reaps the child so it never
// lingers as a zombie while the parent lives; the exit shows in Done.
func Spawn(o SpawnOptions) (*Child, error) {
	if o.Exe == "" {
		return nil, errors.New("spawn daemon: no executable given")
	}
	logf, err := os.OpenFile(o.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open daemon log %s: %w", o.LogPath, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(o.Exe, o.Args...)
	cmd.Env = o.Env
	cmd.Dir = "/" // never pin the build's directory (or its mount) for the daemon's life
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Exe, err)
	}
	return reap(cmd), nil
}

// reap waits for cmd in a goroutine and publishes the result.
func reap(cmd *exec.Cmd) *Child {
	done := make(chan struct{})
	var werr error
	go func() {
		werr = cmd.Wait()
		close(done)
	}()
	return &Child{Process: cmd.Process, Done: done, Err: func() error {
		select {
		case <-done:
			return werr
		default:
			return nil
		}
	}}
}

// Readiness polling: every readyPoll for the first readyFastFor (a daemon
// is usually ready within 10-20 ms, and a coarser step would be added to
// every `daemon start`: backing off from 5 ms made the median start 22 ms
// instead of 15), then backing off to readyPollMax.
const (
	readyPoll    = time.Millisecond
	readyFastFor = 100 * time.Millisecond
	readyPollMax = 100 * time.Millisecond
)

// WaitReady calls ready until it succeeds, every millisecond for the first
// 100 ms, then backing off to 100 ms. It returns ErrChildExited (with the
// exit status) if the child dies first, and an error naming the deadline if
// ctx ends first. After the child exits, ready gets one last try: the child
// may have stood down because another daemon won the race, and that daemon
// being ready is success.
func (c *Child) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	delay, begin := readyPoll, time.Now()
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-c.Done:
			t.Stop()
			if ready(ctx) == nil {
				return nil
			}
			return c.exited()
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("daemon (pid %d) not ready before the deadline: %w (last check: %v)", c.Process.Pid, ctx.Err(), err)
		case <-t.C:
		}
		if time.Since(begin) > readyFastFor {
			delay = min(delay*2, readyPollMax)
		}
	}
}

// exited builds the ErrChildExited error once Done has closed.
func (c *Child) exited() error {
	if err := c.Err(); err != nil {
		return fmt.Errorf("%w (pid %d): %w", ErrChildExited, c.Process.Pid, err)
	}
	return fmt.Errorf("%w (pid %d): exit status 0", ErrChildExited, c.Process.Pid)
}

// LogTail returns the last n lines of the file at path, reading backwards
// from the end so a large log costs no more than its tail. A final line
// without a newline counts as a line.
func LogTail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	off, size, err := tailOffset(f, n)
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	s := strings.TrimSuffix(string(buf), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// ProcInfo identifies a process well enough to tell a kache daemon from an
// unrelated process that reused its pid: StartTime changes with every new
// process, so (Pid, StartTime) names one process for good.
type ProcInfo struct {
	Pid, UID  int
	Exe       string
	Args      []string
	StartTime uint64 // Linux: clock ticks after boot; macOS: µs since the epoch
}

// FindDaemons lists this user's `kache daemon run` processes that serve
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

// isDaemonRun matches `kache daemon run`, by argv[0] or by executable, so a
// renamed-away binary ("kache (deleted)" after an update) still counts.
func isDaemonRun(p ProcInfo) bool {
	if len(p.Args) < 3 || p.Args[1] != "daemon" || p.Args[2] != "run" {
		return false
	}
	named := func(s string) bool { return filepath.Base(strings.TrimSuffix(s, " (deleted)")) == "kache" }
	return named(p.Args[0]) || named(p.Exe)
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
