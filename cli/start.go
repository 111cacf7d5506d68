package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/rpc"
)

// startTimeout bounds `kache daemon start` (and an auto-start) by default.
const startTimeout = daemonctl.StartTimeout

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
	st, how, err := ensureDaemon(ctx, env, p, timeout)
	if err != nil {
		return err
	}
	daemonctl.NewBreaker(p, env.epoch()).Record(nil) // a daemon runs: clients may auto-start again
	if how == daemonctl.AlreadyRunning {
		fmt.Fprintf(env.Stdout, "kache daemon already running (pid %d, %s)\n", st.Pid, p.Socket)
		return nil
	}
	fmt.Fprintf(env.Stdout, "kache daemon started (pid %d, %s)\nlog: %s\n", st.Pid, p.Socket, p.LogFile())
	return nil
}

// ensureDaemon returns the running daemon's status, starting one if none
// answers (daemonctl.Starter), and how it came.
func ensureDaemon(ctx context.Context, env *Env, p config.Paths, timeout time.Duration) (*rpc.Status, daemonctl.How, error) {
	s, err := starter(env, p)
	if err != nil {
		return nil, daemonctl.AlreadyRunning, err
	}
	return s.Ensure(ctx, timeout)
}

// starter is the daemon's Starter for this client: its command line and
// environment, and the installed service.
func starter(env *Env, p config.Paths) (*daemonctl.Starter, error) {
	argv, err := daemonArgv(env, true, false)
	if err != nil {
		return nil, err
	}
	prog := newProgress(env.Stderr)
	return &daemonctl.Starter{Paths: p, Epoch: env.epoch(), Argv: argv, Env: withStartedBy(daemonEnv(env, p), env.startedBy),
		Service: serviceOptions(env, p), Progress: prog.show,
		Warn: func(msg string) { fmt.Fprintf(env.Stderr, "kache: %s\n", msg) }}, nil
}

// runningStatus is the status of a daemon that answers and is running
// (not draining toward its exit), or nil.
func runningStatus(ctx context.Context, env *Env, p config.Paths) *rpc.Status {
	s := daemonctl.Starter{Paths: p, Epoch: env.epoch()}
	return s.Running(ctx)
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
