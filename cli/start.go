package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
	"github.com/kunobi-ninja/kache/states"
)

const (
	startTimeout     = 10 * time.Second
	managedStartWait = 5 * time.Second
	logTailLines     = 20
)

// runStart is `kache daemon start`.
func runStart(ctx context.Context, env *Env, timeout time.Duration) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	if timeout <= 0 {
		return usagef("--timeout must be positive, not %s", timeout)
	}
	env.startedBy = "start"
	st, started, err := ensureDaemon(ctx, env, p, timeout)
	if err != nil {
		return err
	}
	newAutostartBreaker(p, env.epoch()).Record(nil) // a daemon runs: clients may auto-start again
	if !started {
		fmt.Fprintf(env.Stdout, "kache daemon already running (pid %d, %s)\n", st.Pid, p.Socket)
		return nil
	}
	fmt.Fprintf(env.Stdout, "kache daemon started (pid %d, %s)\nlog: %s\n", st.Pid, p.Socket, p.LogFile())
	return nil
}

// ensureDaemon returns the running daemon's status, spawning one if none
// answers. Concurrent callers serialise on the spawn lock, so fifty starts
// at once spawn one daemon.
func ensureDaemon(ctx context.Context, env *Env, p config.Paths, timeout time.Duration) (*rpc.Status, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if st := runningStatus(ctx, env, p); st != nil {
		return st, false, nil
	}
	if err := safesocket.PrepareDir(p.Dir()); err != nil {
		return nil, false, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	lock, err := runlock.WaitLock(ctx, p.SpawnLock())
	if err != nil {
		return nil, false, fmt.Errorf("wait for the spawn lock %s: %w", p.SpawnLock(), err)
	}
	defer lock.Release()
	if st := waitOldDaemon(ctx, env, p); st != nil {
		return st, false, nil
	}
	if ctx.Err() != nil {
		return nil, false, fmt.Errorf("the daemon holding %s%s neither became ready nor exited within %s: if it is draining, retry once it has exited; if it is wedged, run `kache daemon restart`",
			p.RunLock(), statefile.HolderHint(p.StateFile()), timeout)
	}
	if st := startManaged(ctx, env, p); st != nil {
		return st, true, nil
	}
	st, err := spawnDaemon(ctx, env, p)
	return st, err == nil, err
}

// startManaged starts an installed service through its manager, so that a
// daemon that exited idle comes back managed (launchd has no socket
// activation) rather than as an unmanaged child of some build. nil: not
// installed, or the manager did not bring it up; the caller spawns one.
func startManaged(ctx context.Context, env *Env, p config.Paths) *rpc.Status {
	opts := serviceOptions(env, p)
	if !service.Status(opts).Installed {
		return nil
	}
	if err := service.Restart(ctx, opts); err != nil {
		fmt.Fprintf(env.Stderr, "kache: the service manager did not start the daemon (%v); starting it directly\n", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, managedStartWait) // leave time to spawn one instead
	defer cancel()
	for ctx.Err() == nil {
		if st := runningStatus(ctx, env, p); st != nil {
			return st
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// runningStatus is the status of a daemon that answers and is running
// (not draining toward its exit), or nil.
func runningStatus(ctx context.Context, env *Env, p config.Paths) *rpc.Status {
	c := &rpc.Client{Socket: p.Socket, Epoch: env.epoch(), CallTimeout: statusTimeout}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil || st.State != string(states.Running) {
		return nil
	}
	return st
}

// waitOldDaemon waits while a daemon holds the run lock: one that is
// starting (return it once it runs) or draining toward its exit (return
// nil once it has gone, so a fresh one can be spawned).
func waitOldDaemon(ctx context.Context, env *Env, p config.Paths) *rpc.Status {
	prog := newProgress(env.Stderr)
	for runlock.LockHeld(p.RunLock()) {
		if st := runningStatus(ctx, env, p); st != nil {
			return st
		}
		prog.show("waiting for the daemon holding " + p.RunLock() + " to become ready or exit")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// spawnDaemon starts kache-daemon in the background and waits for it to
// say it is ready (spawn's readiness pipe: no polling); on failure the
// error carries the log's last lines.
func spawnDaemon(ctx context.Context, env *Env, p config.Paths) (*rpc.Status, error) {
	argv, err := daemonArgv(env, true, false)
	if err != nil {
		return nil, err
	}
	child, err := spawn.Start(spawn.Options{Exe: argv[0], Args: argv[1:], Env: withStartedBy(daemonEnv(env, p), env.startedBy), LogPath: p.LogFile()})
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", argv[0], err)
	}
	prog := newProgress(env.Stderr)
	prog.show("waiting for the daemon to answer on " + p.Socket)
	var st *rpc.Status
	answers := func(ctx context.Context) error { // also: another daemon won the race
		if st = runningStatus(ctx, env, p); st == nil {
			return errors.New("no daemon answers as running")
		}
		return nil
	}
	if err = child.WaitReady(ctx, answers); err == nil && st == nil {
		err = answers(ctx)
	}
	if err != nil {
		return nil, startFailure(p, err)
	}
	return st, nil
}

// startFailure explains a failed start with the tail of the daemon log.
func startFailure(p config.Paths, err error) error {
	lines, _ := logtail.Tail(p.LogFile(), logTailLines)
	tail := strings.Join(lines, "\n  ")
	if tail == "" {
		tail = "(empty)"
	}
	return fmt.Errorf("the daemon did not start: %w\nlast lines of %s:\n  %s\nfix the cause above, or see `kache daemon log`", err, p.LogFile(), tail)
}

// daemonEnv is the environment of a spawned daemon: ours, with the paths
// made absolute (the daemon runs in /, not in the build's directory), and
// without what belongs to our own service manager (a daemon spawned from
// inside a systemd unit must not notify that unit, nor adopt its sockets).
func daemonEnv(env *Env, p config.Paths) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case startedByEnv, "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "KACHE_CACHE_DIR", "KACHE_SOCKET_PATH", "KACHE_CONFIG":
			continue
		case "KACHE_REMOTE_DIR": // set but empty means unset: filepath.Abs("") would be the build's directory
			if abs, err := filepath.Abs(env.Getenv(k)); err == nil && env.Getenv(k) != "" {
				kv = k + "=" + abs
			}
		}
		out = append(out, kv)
	}
	cfg, _ := filepath.Abs(config.FilePath(env.Getenv))
	return append(out, "KACHE_CACHE_DIR="+p.CacheDir, "KACHE_SOCKET_PATH="+p.Socket, "KACHE_CONFIG="+cfg)
}
