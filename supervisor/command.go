package supervisor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/internal/statefile"
)

// ErrUsage marks a bad kache-daemon command line (exit 2).
var ErrUsage = errors.New("usage")

// Env is what the daemon command may touch of its process.
type Env struct {
	Stderr  io.Writer
	Getenv  func(string) string
	Exe     string // this kache-daemon binary
	Version string
}

// Command is the kache-daemon command line: `kache-daemon run [flags]`,
// which `kache daemon run` execs and `kache daemon start` spawns. Its log
// always goes to the log file (so `kache daemon log` works for a managed
// daemon too); in the foreground, warnings and errors also reach stderr,
// or more with KACHE_LOG.
func Command(ctx context.Context, env Env, args []string) error {
	spawn.ReleaseReadyFD() // nothing we start inherits it
	f, err := parseFlags(env, args)
	if err != nil {
		return err
	}
	if f.clientVersion != "" && f.clientVersion != env.Version {
		return fmt.Errorf("%w: %s is version %s but the kache that started it is version %s: install both binaries from one build (`make build`, or `go install ./cmd/...`)",
			config.ErrInvalid, env.Exe, env.Version, f.clientVersion)
	}
	return run(ctx, env, f)
}

// flags of `kache-daemon run`.
type flags struct {
	background, successor bool
	clientExe             string
	clientVersion         string
}

func parseFlags(env Env, args []string) (flags, error) {
	var f flags
	if len(args) < 2 || args[1] != "run" {
		return f, fmt.Errorf("%w: kache-daemon is started by kache: run `kache daemon start` (or `kache daemon run` in the foreground)", ErrUsage)
	}
	fs := flag.NewFlagSet("kache-daemon run", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.BoolVar(&f.background, "background", false, "log only to the log file (set by kache daemon start)")
	fs.BoolVar(&f.successor, "successor", false, "wait for a draining daemon to exit, then take over (set by kache upload)")
	fs.StringVar(&f.clientExe, "client-exe", "", "the kache binary this daemon serves (its epoch counts, and it is watched)")
	fs.StringVar(&f.clientVersion, "client-version", "", "the version of that kache binary, which must be ours")
	if err := fs.Parse(args[2:]); err != nil {
		return f, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return f, nil
}

// run loads the configuration, opens the log and runs the daemon.
func run(ctx context.Context, env Env, f flags) error {
	p, err := config.ResolvePaths(env.Getenv)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return err
	}
	level, err := parseLogLevel(env.Getenv("KACHE_LOG"))
	if err != nil {
		return err
	}
	if err := safesocket.PrepareDir(p.Dir()); err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	inherit, err := TakeInherited(env.Getenv)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if !f.successor && inherit == nil && runlock.LockHeld(p.RunLock()) {
		// Checked before opening the log: lumberjack assumes one writer.
		return fmt.Errorf("%w: %s is held%s", ErrAlreadyRunning, p.RunLock(), statefile.HolderHint(p.StateFile()))
	}
	file, err := OpenLog(p.LogFile())
	if err != nil {
		return fmt.Errorf("open log %s: %w", p.LogFile(), err)
	}
	defer file.Close()
	o := Options{Paths: p, Config: cfg, Version: env.Version, Exe: f.clientExe, DaemonExe: env.Exe,
		Log: newLogger(file, env.Stderr, level, f.background), LogPath: p.LogFile(), WatchBinary: true,
		StartedBy: env.Getenv(StartedByEnv), Inherit: inherit}
	o.Epoch = o.ownEpoch()
	o.InputFingerprint = config.InputFingerprint(env.Getenv)
	o.Build = ownBuild(env.Exe)
	o.NoHandover = env.Getenv("KACHE_NO_HANDOVER") == "1"
	o.Getenv = env.Getenv
	if f.successor {
		o.Successor = cfg.DrainTimeout + successorMargin
	}
	return Run(ctx, o)
}

// epoch is the build epoch of the installation this daemon belongs to.
func (o Options) epoch() int64 {
	if o.Exe == "" {
		return install.Epoch(o.DaemonExe)
	}
	return install.Epoch(o.Exe)
}

// ownEpoch is the epoch this daemon reports: from the image it runs, not
// the file now at its path. On Linux /proc/self/exe is the file this
// process was started from even if an installer has replaced it since; a
// successor started halfway through an installation must not claim the
// new epoch while it runs the old code.
func (o Options) ownEpoch() int64 {
	img := int64(0)
	if runtime.GOOS == "linux" {
		img = epoch.Of("/proc/self/exe")
	}
	switch {
	case img == 0:
		return o.epoch()
	case o.Exe == "":
		return img
	}
	return max(epoch.Of(o.Exe), img)
}

// successorMargin is how much longer than the drain timeout a successor
// waits for the draining daemon to release its lock.
const successorMargin = 15 * time.Second

// newLogger writes to the file at info (or the KACHE_LOG level if more
// verbose) and, unless in the background, to stderr at the KACHE_LOG level.
func newLogger(file, stderr io.Writer, level slog.Level, background bool) *slog.Logger {
	fileLevel := min(level, slog.LevelInfo)
	handlers := []slog.Handler{slog.NewTextHandler(file, &slog.HandlerOptions{Level: fileLevel})}
	if !background {
		handlers = append(handlers, slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(slog.NewMultiHandler(handlers...))
}

// parseLogLevel reads KACHE_LOG: "", "kache=info", "kache=debug", or a bare
// level. Empty means warnings and errors only.
func parseLogLevel(v string) (slog.Level, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return slog.LevelWarn, nil
	}
	v = strings.TrimPrefix(v, "kache=")
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("%w: KACHE_LOG=%q: want kache=debug, kache=info, kache=warn or kache=error", config.ErrInvalid, v)
	}
	return l, nil
}
