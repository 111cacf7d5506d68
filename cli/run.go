package cli

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/install"
)

// runDaemon is `kache daemon run`: it execs kache-daemon in its place, so
// the pid a service manager started and watches (Type=notify, the exit
// codes) is the daemon's own. Only what exec needs happens here.
func runDaemon(_ context.Context, env *Env, background, successor bool) error {
	argv, err := daemonArgv(env, background, successor)
	if err != nil {
		return err
	}
	if err := syscall.Exec(argv[0], argv, os.Environ()); err != nil {
		return fmt.Errorf("%w: exec %s: %w (reinstall kache: `make build` or `go install ./cmd/...`)", config.ErrInvalid, argv[0], err)
	}
	return nil // not reached
}

// daemonArgv is the command line of the kache-daemon that serves this
// kache: the binary installed beside it, told who started it, so that it
// watches both binaries and refuses to run for a kache of another version.
func daemonArgv(env *Env, background, successor bool) ([]string, error) {
	exe, err := install.DaemonPath(env.Exe)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	argv := []string{exe, "run", "--client-exe", env.Exe, "--client-version", env.Version}
	if background {
		argv = append(argv, "--background")
	}
	if successor {
		argv = append(argv, "--successor")
	}
	return argv, nil
}
