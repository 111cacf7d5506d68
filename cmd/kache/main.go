// Command kache is the build cache's client: the compiler wrapper's side
// and every command a person or a script runs. The daemon is kache-daemon,
// beside it. main alone chooses exit codes; docs/exit-codes.md lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kunobi-ninja/kache/cli"
	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/service"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	env := &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Exe: executable(), Version: version}
	err := cli.Run(context.Background(), env, os.Args)
	var child cli.ChildExit
	if errors.As(err, &child) {
		os.Exit(int(child)) // kache ran as the compiler wrapper: the compiler's code
	}
	code := exitCode(err)
	if err != nil && !cli.IsQuiet(err) && code != 0 {
		fmt.Fprintf(os.Stderr, "kache: %v\n", err)
	}
	os.Exit(code)
}

// exitCode maps an error onto the documented exit codes.
func exitCode(err error) int {
	switch {
	case err == nil:
		return service.ExitClean
	case errors.Is(err, cli.ErrUsage):
		return service.ExitUsage
	case errors.Is(err, cli.ErrNotRunning):
		return service.ExitNotRunning
	case errors.Is(err, cli.ErrFlushFailed):
		return service.ExitFlushFailed
	case errors.Is(err, cli.ErrFlushTimeout):
		return service.ExitFlushTimeout
	case errors.Is(err, config.ErrInvalid):
		return service.ExitConfig
	}
	return service.ExitCrash // cli.ErrMiss, cli.ErrNotAnswering, anything else
}

// executable is this binary's path as invoked, found on PATH if need be,
// so that a symlink swap is watched at the link; else the resolved one.
func executable() string {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}
