package service

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// probeTimeout bounds the read-only commands that ask whether a manager is
// there; a wedged bus must not hang `kache daemon install`.
const probeTimeout = 5 * time.Second

// CommandError is a service-manager command that failed. It keeps the
// command's output because that is where systemctl and launchctl say why.
type CommandError struct {
	Cmd    string // the command line, e.g. "systemctl --user daemon-reload"
	Output string // its trimmed combined output
	Err    error
}

func (e *CommandError) Error() string {
	if errors.Is(e.Err, exec.ErrNotFound) {
		return fmt.Sprintf("%s: %s is not on PATH", e.Cmd, strings.Fields(e.Cmd)[0])
	}
	if e.Output == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, e.Output)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's exit status, or -1 if it did not run or died
// of a signal.
func (e *CommandError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// probe runs a read-only query command under probeTimeout.
func probe(ctx context.Context, o Options, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return run(ctx, o, name, args...)
}

// run runs one command through o.Run and wraps a failure with its output.
func run(ctx context.Context, o Options, name string, args ...string) ([]byte, error) {
	out, err := o.Run(ctx, name, args...)
	if err != nil {
		cmd := strings.Join(append([]string{name}, args...), " ")
		return out, &CommandError{Cmd: cmd, Output: strings.TrimSpace(string(out)), Err: err}
	}
	return out, nil
}
