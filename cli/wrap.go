package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/upload"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/wrapper"
)

// ChildExit is the exit code of a compiler kache ran as a wrapper: main
// exits with it, printing nothing (the compiler spoke for itself).
type ChildExit int

func (c ChildExit) Error() string { return fmt.Sprintf("compiler exited %d", int(c)) }

// remoteCheckDeadline bounds how long a local miss waits for the remote
// before compiling.
const remoteCheckDeadline = 2 * time.Second

// isWrapperCall reports whether kache runs as cargo's RUSTC_WRAPPER (or
// RUSTC_WORKSPACE_WRAPPER): its first argument is the compiler, a path or
// a name like rustc, never one of kache's verbs.
func isWrapperCall(args []string) bool {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return false
	}
	base := filepath.Base(args[1])
	return strings.ContainsRune(args[1], '/') || strings.Contains(base, "rustc") || strings.Contains(base, "clippy-driver")
}

// runWrapper is kache as the compiler wrapper. It never fails the build
// on kache's account: without usable paths or configuration the compiler
// runs without the cache.
func runWrapper(ctx context.Context, env *Env, argv []string) error {
	o := wrapper.Options{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, Environ: os.Environ(), CheckDeadline: remoteCheckDeadline}
	o.Cwd, _ = os.Getwd()
	p, cfg, err := wrapperSetup(env)
	if err == nil {
		o.Store, err = upload.Store(p)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "kache: running the compiler without the cache: %v\n", err)
		o.CacheDir = os.TempDir()
		return ChildExit(wrapper.Passthrough(ctx, o, argv))
	}
	o.CacheDir, o.Salt = p.CacheDir, cfg.KeySalt
	if cfg.HasRemote() {
		d := &wrapperDaemon{env: env, p: p, build: wrapper.BuildPid}
		defer d.close()
		o.Daemon = d
	}
	return ChildExit(wrapper.Run(ctx, o, argv))
}

// wrapperSetup resolves the paths and the configuration; upload.Store
// then makes the store and checks that the cache dir is private.
func wrapperSetup(env *Env) (config.Paths, config.Config, error) {
	p, err := env.wrapperPaths()
	if err != nil {
		return p, config.Config{}, err
	}
	cfg, err := config.Load(env.Getenv)
	return p, cfg, err
}

// wrapperDaemon is the daemon as the wrapper uses it: checks never start
// it (a 100 ms dial, then a miss), uploads may.
type wrapperDaemon struct {
	env *Env
	p   config.Paths
	by  string // how a daemon this starts records its start; "" auto:wrapper
	// build finds the build's pid (cargo, the go command), whose end the
	// uploads wait for; asked only when there is something to upload, so a
	// hit never reads /proc for it.
	build func() int
	check *rpc.Client
}

func (d *wrapperDaemon) RemoteCheck(ctx context.Context, key string, deadline time.Duration) (bool, error) {
	if d.check == nil {
		d.check = &rpc.Client{Socket: d.p.Socket, Epoch: d.env.epoch(), DialTimeout: 100 * time.Millisecond}
	}
	return d.check.RemoteCheck(ctx, key, deadline)
}

// Upload writes the intents, then hands them over; the spool keeps them
// whatever becomes of the daemon.
func (d *wrapperDaemon) Upload(ctx context.Context, entries map[string]string) error {
	build := 0
	if d.build != nil {
		build = d.build()
	}
	var es []upload.Entry
	for k, path := range entries {
		es = append(es, upload.Entry{Key: k, Path: path, Build: build})
	}
	wire, err := upload.Write(d.p.SpoolDir(), es, d.env.epoch())
	if err != nil {
		return err
	}
	d.env.startedBy = "auto:wrapper"
	if d.by != "" {
		d.env.startedBy = d.by
	}
	w := newWrapper(d.env, d.p, d.env.epoch())
	w.BuildPid = build
	defer w.Client.Close()
	return w.Upload(ctx, wire).Kept
}

func (d *wrapperDaemon) close() {
	if d.check != nil {
		d.check.Close()
	}
}
