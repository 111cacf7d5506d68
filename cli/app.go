// Package cli is kache's command line: the daemon's lifecycle verbs and the
// client verbs a build wrapper or a script calls. It returns errors and
// never exits; cmd/kache/main.go alone turns them into exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/install"
	ucli "github.com/urfave/cli/v2"
)

// Errors main maps to exit codes (docs/exit-codes.md).
var (
	// ErrUsage: bad flags, arguments or input (exit 2).
	ErrUsage = errors.New("usage")
	// ErrNotRunning: status found no daemon (exit 3, as systemctl status).
	ErrNotRunning = daemonctl.ErrNotRunning
	// ErrMiss: `kache check` found nothing (exit 1, nothing printed as an error).
	ErrMiss = errors.New("miss")
)

// Env is what a command may touch of the process: a seam for in-process tests.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader // nil: os.Stdin
	Getenv         func(string) string
	Exe            string // path of this kache binary as invoked
	Version        string

	epochOnce sync.Once
	epochVal  int64
	buildOnce sync.Once
	buildVal  string
	// startedBy is what a daemon this process spawns records as its start
	// (supervisor.StartedByEnv); set by the command that may spawn one.
	startedBy string
}

// epoch is the build epoch of this installation (kache and kache-daemon),
// read once per process.
func (env *Env) epoch() int64 {
	env.epochOnce.Do(func() { env.epochVal = install.Epoch(env.Exe) })
	return env.epochVal
}

// build is the installation's build ID, read once (the first page of
// kache-daemon), only by the calls whose epoch the daemon acts on.
func (env *Env) build() string {
	env.buildOnce.Do(func() { env.buildVal = install.Build(env.Exe) })
	return env.buildVal
}

// usagef builds an ErrUsage with a message for the user.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// Run runs the command line args (args[0] is the program name).
func Run(ctx context.Context, env *Env, args []string) error {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if isWrapperCall(args) {
		return runWrapper(ctx, env, args[1:])
	}
	app := newApp(env)
	return app.RunContext(ctx, args)
}

// setVersionPrinter installs urfave/cli's package-level version printer
// once; it finds the Env of the app it prints for in the app's metadata,
// so concurrent in-process runs do not race on the global.
var setVersionPrinter sync.Once

func newApp(env *Env) *ucli.App {
	setVersionPrinter.Do(func() { ucli.VersionPrinter = func(c *ucli.Context) { printVersion(c.App.Metadata["env"].(*Env)) } })
	return &ucli.App{
		Name:           "kache",
		Usage:          "build cache wrapper and its background daemon",
		Version:        env.Version,
		Metadata:       map[string]any{"env": env},
		Writer:         env.Stdout,
		ErrWriter:      env.Stderr,
		ExitErrHandler: func(*ucli.Context, error) {}, // main chooses exit codes
		OnUsageError:   onUsageError,
		CommandNotFound: func(c *ucli.Context, name string) {
			fmt.Fprintf(env.Stderr, "kache: no command %q; run `kache --help`\n", name)
		},
		Suggest:  true,
		Action:   rootAction,
		Commands: withUsageErrors([]*ucli.Command{daemonCommand(env), uploadCommand(env), checkCommand(env), prefetchCommand(env), statsCommand(env), buildStartedCommand(env), flushCommand(env), monitorCommand(env), whyMissCommand(env), cacheprogCommand(env)}),
	}
}

// withUsageErrors sets OnUsageError on every command and subcommand: urfave
// only calls the app's for the app's own flags, and otherwise prints the
// whole help and returns an error main cannot tell from a failure (exit 1
// where a bad flag is exit 2).
func withUsageErrors(cmds []*ucli.Command) []*ucli.Command {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		withUsageErrors(c.Subcommands)
	}
	return cmds
}

// rootAction runs for a bare `kache` (help) and for an unknown command,
// which urfave/cli would otherwise let exit 0.
func rootAction(c *ucli.Context) error {
	if c.Args().Present() {
		return usagef("no command %q; run `kache --help`", c.Args().First())
	}
	return ucli.ShowAppHelp(c)
}

func onUsageError(c *ucli.Context, err error, _ bool) error {
	return usagef("%v (see `%s --help`)", err, c.Command.HelpName)
}

// printVersion prints the version and the build epoch of this binary.
func printVersion(env *Env) {
	epoch := env.epoch()
	fmt.Fprintf(env.Stdout, "kache %s (build epoch %d, %s)\n", env.Version, epoch, time.Unix(0, epoch).UTC().Format(time.RFC3339Nano))
}

// wrapperPaths is paths for the verbs a compile runs (upload, check,
// prefetch, build-started), whose exit codes are 0, 1 and 2 only: an
// unusable path is a plain failure there (exit 1; check: a miss), never
// the configuration code a service manager acts on.
func (env *Env) wrapperPaths() (config.Paths, error) {
	p, err := config.ResolvePaths(env.Getenv)
	if err != nil {
		return p, fmt.Errorf("cannot find kache's files: %w", err)
	}
	return p, nil
}

// paths resolves the socket and cache dir, with the fix in the error.
func (env *Env) paths() (config.Paths, error) {
	p, err := config.ResolvePaths(env.Getenv)
	if err != nil {
		return p, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	return p, nil
}
