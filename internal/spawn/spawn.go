// Package spawn starts the daemon in the background and learns from the
// daemon itself that it is ready: the child gets the write end of a pipe
// (its fd 3, named by KACHE_READY_FD) and writes one line on it once it
// serves, as s6's notification-fd and tableflip do. No polling.
package spawn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrChildExited means the spawned daemon exited before it was ready. The
// error also wraps the *exec.ExitError, when there is one, for the status.
var ErrChildExited = errors.New("daemon exited before it was ready")

// ReadyFDEnv names the descriptor a spawned daemon reports readiness on.
const ReadyFDEnv = "KACHE_READY_FD"

// readyFD is the child's fd for the pipe: the first of ExtraFiles.
const readyFD = 3

// FirstFileFD is the child's fd of Options.Files[0].
const FirstFileFD = readyFD + 1

// readyLine is what a ready daemon writes (the sd_notify word).
const readyLine = "READY=1"

// Options describe the background daemon to start.
type Options struct {
	Exe     string   // absolute path of the binary to run
	Args    []string // arguments after argv[0]
	Env     []string // the child's environment; nil inherits ours
	LogPath string   // the child's stderr is appended here
	// Files are passed on as fd 4 onwards, after the readiness pipe: a
	// daemon handing over passes its listener and run lock this way.
	Files []*os.File
}

// Child is a spawned daemon. Done closes once it has exited and been
// reaped; Err then returns how it exited (nil for status 0, and nil while
// it still runs).
type Child struct {
	Process *os.Process
	Done    <-chan struct{}
	Err     func() error
	ready   *os.File // read end of the readiness pipe
}

// Start starts the daemon detached: in its own session, so a Ctrl-C in the
// terminal that ran `kache daemon start` never reaches it; stdin and stdout
// on /dev/null; stderr appended to the log, so startup errors and runtime
// crashes land where `kache daemon log` looks; fd 3 the readiness pipe; and
// no other descriptor of ours, whatever our own caller left open (a pipe
// held by the daemon would keep `kache upload | cat` waiting for its whole
// life). A goroutine reaps the child so it never lingers as a zombie.
func Start(o Options) (*Child, error) {
	if o.Exe == "" {
		return nil, errors.New("spawn daemon: no executable given")
	}
	logf, err := os.OpenFile(o.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open daemon log %s: %w", o.LogPath, err)
	}
	defer logf.Close() // the child has its own copy
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("readiness pipe: %w", err)
	}
	defer w.Close() // the child holds the write end; EOF means it let go
	cmd := exec.Command(o.Exe, o.Args...)
	cmd.Env = append(envOrOurs(o.Env), ReadyFDEnv+"="+strconv.Itoa(readyFD))
	cmd.Dir = "/" // never pin the build's directory (or its mount) for the daemon's life
	cmd.Stderr = logf
	cmd.ExtraFiles = append([]*os.File{w}, o.Files...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, fmt.Errorf("start %s: %w", o.Exe, err)
	}
	c := reap(cmd)
	c.ready = r
	return c, nil
}

// envOrOurs is env, or our environment when env is nil (exec.Cmd's rule,
// which appending to a nil Env would break).
func envOrOurs(env []string) []string {
	if env == nil {
		return os.Environ()
	}
	return env
}

// closeInheritedOnExec marks every descriptor above stderr close-on-exec.
// Go opens its own files that way; what it does not cover are descriptors
// our process inherited open (a shell's `exec 7>&1`), which every child
// would otherwise inherit in turn.
func closeInheritedOnExec() {
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// reap waits for cmd in a goroutine and publishes the result.
func reap(cmd *exec.Cmd) *Child {
	done := make(chan struct{})
	var werr error
	go func() {
		werr = cmd.Wait()
		close(done)
	}()
	return &Child{Process: cmd.Process, Done: done, Err: func() error {
		select {
		case <-done:
			return werr
		default:
			return nil
		}
	}}
}

// WaitReady waits for the daemon's readiness line. If the pipe closes
// without one, the child has exited (or is exiting): it may have stood down
// because another daemon won the race, so won gets one try, and its success
// is ours. Otherwise the error is ErrChildExited with the exit status, or
// one naming the deadline if ctx ends first.
func (c *Child) WaitReady(ctx context.Context, won func(context.Context) error) error {
	defer c.ready.Close()
	got := make(chan bool, 1)
	go func() { got <- readLine(c.ready) }()
	select {
	case ok := <-got:
		if ok {
			return nil
		}
	case <-ctx.Done():
		c.ready.Close() // unblocks the reader
		return fmt.Errorf("daemon (pid %d) not ready before the deadline: %w", c.Process.Pid, ctx.Err())
	}
	if won != nil && won(ctx) == nil {
		return nil
	}
	return c.exited(ctx)
}

// Detach gives up waiting for the child: the caller returns while the
// daemon starts (a successor that takes over once the old daemon exits).
func (c *Child) Detach() { c.ready.Close() }

// readLine reports whether the pipe's first line says ready.
func readLine(f *os.File) bool {
	line, err := bufio.NewReader(f).ReadString('\n')
	return err == nil && strings.TrimSpace(line) == readyLine
}

// exited waits (within ctx) for the child to be reaped and describes how
// it ended.
func (c *Child) exited(ctx context.Context) error {
	select {
	case <-c.Done:
	case <-ctx.Done():
		return fmt.Errorf("%w (pid %d): it closed its readiness pipe and is still running", ErrChildExited, c.Process.Pid)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%w (pid %d): it closed its readiness pipe and is still running", ErrChildExited, c.Process.Pid)
	}
	if err := c.Err(); err != nil {
		return fmt.Errorf("%w (pid %d): %w", ErrChildExited, c.Process.Pid, err)
	}
	return fmt.Errorf("%w (pid %d): exit status 0", ErrChildExited, c.Process.Pid)
}

// NotifyReady is the daemon's side: it writes the readiness line on the
// descriptor KACHE_READY_FD names, closes it and unsets the variable, so a
// daemon started any other way (a service manager, a terminal) does
// nothing, and children of the daemon inherit neither. Call it once the
// socket answers.
func NotifyReady() error {
	v := os.Getenv(ReadyFDEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(ReadyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("%s=%q is not a descriptor", ReadyFDEnv, v)
	}
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	if _, err := f.WriteString(readyLine + "\n"); err != nil {
		return fmt.Errorf("report readiness on fd %d: %w", fd, err)
	}
	return nil
}

// ReleaseReadyFD marks the readiness descriptor close-on-exec without
// using it, for a daemon that must not be inherited by what it spawns
// before it is ready.
func ReleaseReadyFD() {
	if fd, err := strconv.Atoi(os.Getenv(ReadyFDEnv)); err == nil && fd > 2 {
		syscall.CloseOnExec(fd)
	}
}
