package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/supervisor"
)

// runDaemon is `kache daemon run`: the daemon in the foreground. Its log
// always goes to the log file (so `kache daemon log` works for a managed
// daemon too); in the foreground, warnings and errors also reach stderr,
// or more with KACHE_LOG.
func runDaemon(ctx context.Context, env *Env, background, successor bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return err
	}
	level, err := parseLogLevel(env.Getenv("KACHE_LOG"))
	if err != nil {
		return err
	}
	if err := supervisor.PrepareDir(p.Dir()); err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	if !successor && supervisor.LockHeld(p.RunLock()) {
		// Checked before opening the log: lumberjack assumes one writer.
		return fmt.Errorf("%w: %s is held%s", supervisor.ErrAlreadyRunning, p.RunLock(), supervisor.HolderHint(p))
	}
	file, err := supervisor.OpenLog(p.LogFile())
	if err != nil {
		return fmt.Errorf("open log %s: %w", p.LogFile(), err)
	}
	defer file.Close()
	log := newLogger(file, env.Stderr, level, background)
	o := supervisor.Options{Paths: p, Config: cfg, Version: env.Version,
		Exe: env.Exe, Epoch: supervisor.BinaryEpoch(env.Exe), Log: log, LogPath: p.LogFile(), WatchBinary: true}
	if successor {
		o.Successor = cfg.DrainTimeout + successorMargin
	}
	return supervisor.Run(ctx, o)
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
