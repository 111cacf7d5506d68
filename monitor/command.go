package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/service"
)

// ErrUsage marks a bad command line (exit 2).
var ErrUsage = errors.New("usage")

// Env is what the monitor command may touch of its process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Version        string
	// Terminal reports whether stdout is a terminal: without one, the
	// monitor prints once, as --once does.
	Terminal bool
}

type flags struct {
	once, json bool
	clientExe  string
}

// Command is `kache-monitor [--once] [--json] [--client-exe PATH]`, which
// `kache monitor` execs.
func Command(ctx context.Context, env Env, args []string) error {
	f, err := parse(env, args)
	if err != nil {
		return err
	}
	p, err := config.ResolvePaths(env.Getenv)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	src := Source{Paths: p, Binary: Binary{Version: env.Version, Exe: f.clientExe, Epoch: install.Epoch(f.clientExe)},
		ServiceInstalled: func() bool { return serviceInstalled(f.clientExe, p) }, Builds: NewBuilds(BuildsFile(p))}
	gather := func() Snapshot { return Gather(ctx, src) }
	switch {
	case f.json:
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(gather())
	case f.once || !env.Terminal:
		_, err := io.WriteString(env.Stdout, Once(gather()))
		return err
	}
	prog := tea.NewProgram(NewModel(gather(), gather), tea.WithAltScreen(), tea.WithContext(ctx),
		tea.WithInput(env.Stdin), tea.WithOutput(env.Stdout))
	_, err = prog.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func parse(env Env, args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("kache monitor", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.BoolVar(&f.once, "once", false, "print every tab once as plain text and exit (the default when stdout is not a terminal)")
	fs.BoolVar(&f.json, "json", false, "print one snapshot as JSON and exit")
	fs.StringVar(&f.clientExe, "client-exe", "", "the kache binary this monitor belongs to (set by kache monitor)")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return f, nil
}

// serviceInstalled asks the service manager's files whether a unit or
// agent for kache exists (a read: nothing is started).
func serviceInstalled(exe string, p config.Paths) bool {
	return service.Status(service.Options{Exe: exe, Socket: p.Socket, UID: os.Getuid()}).Installed
}
