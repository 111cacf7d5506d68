package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/service"
)

// serviceOptions describes this user's service for the service package,
// carrying the KACHE_* variables in force into the unit.
func serviceOptions(env *Env, p config.Paths) service.Options {
	vars := map[string]string{}
	resolved := map[string]string{"KACHE_SOCKET_PATH": p.Socket, "KACHE_CACHE_DIR": p.CacheDir}
	if cfg, err := filepath.Abs(config.FilePath(env.Getenv)); err == nil {
		resolved["KACHE_CONFIG"] = cfg
	}
	for k, abs := range resolved { // carried only if set, but made absolute: units run in /
		if env.Getenv(k) != "" {
			vars[k] = abs
		}
	}
	home, _ := os.UserHomeDir()
	if h := env.Getenv("HOME"); h != "" {
		home = h
	}
	return service.Options{Exe: env.Exe, Env: vars, Socket: p.Socket, Home: home, UID: os.Getuid(),
		OS: runtime.GOOS, Out: env.Stdout}
}

func runInstall(ctx context.Context, env *Env) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	opts := serviceOptions(env, p)
	opts.StopTimeout = stopTimeout(env) // the unit waits as long as `daemon stop` does
	if err := service.Available(opts); err != nil {
		return err
	}
	if err := stopUnmanaged(ctx, env, p, opts); err != nil {
		return err
	}
	res, err := service.Install(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res)
	return nil
}

func runUninstall(ctx context.Context, env *Env) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	res, err := service.Uninstall(ctx, serviceOptions(env, p))
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res)
	return nil
}

// stopUnmanaged stops a daemon that runs outside the service manager before
// the first install, so the socket unit can take over the socket path.
func stopUnmanaged(ctx context.Context, env *Env, p config.Paths, opts service.Options) error {
	if service.Status(opts).Installed || !daemonctl.Probe(ctx, p, env.epoch(), statusTimeout).Present() {
		return nil
	}
	fmt.Fprintln(env.Stdout, "stopping the running daemon so the service manager can take over")
	return runStop(ctx, env, 0)
}
