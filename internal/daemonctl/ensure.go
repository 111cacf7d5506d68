package daemonctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
	"github.com/kunobi-ninja/kache/states"
)

// Bounds of a start.
const (
	// StatusTimeout bounds one status call of a client's probe or wait.
	StatusTimeout = 2 * time.Second
	// StartTimeout bounds a start (`kache daemon start`'s default, an
	// auto-start, restart's tier 3).
	StartTimeout = 10 * time.Second
	// managedStartWait bounds the wait for a service manager's daemon,
	// leaving time to spawn one instead.
	managedStartWait = 5 * time.Second
	logTailLines     = 20
)

// How says how Ensure got a daemon to answer.
type How string

// The ways Ensure gets a daemon.
const (
	AlreadyRunning How = ""                // one answered already
	StartedManaged How = "service manager" // the installed service's manager started it
	StartedSpawned How = "fresh spawn"     // this client spawned it
)

// Starter starts the daemon on behalf of one client.
type Starter struct {
	Paths config.Paths
	Epoch int64 // the client's build epoch, sent with every call
	// Argv is the daemon's command line (kache-daemon run --background
	// ...), Env its environment.
	Argv []string
	Env  []string
	// Service is the installed service, if any, to start it through its
	// manager rather than as an unmanaged child.
	Service service.Options
	// Progress shows what a wait longer than a moment waits for; nil:
	// nothing. Warn tells the user something went wrong but Ensure goes
	// on (the manager failed: spawning instead).
	Progress, Warn func(string)
}

// Ensure returns the running daemon's status, starting one if none
// answers: through the service manager if one is installed, else by a
// spawn. Concurrent callers serialise on the spawn lock, so fifty starts
// at once start one daemon, and a daemon that holds the run lock while
// starting or draining is waited for (within timeout).
func (s *Starter) Ensure(ctx context.Context, timeout time.Duration) (*rpc.Status, How, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := s.Paths
	if st := s.Running(ctx); st != nil {
		return st, AlreadyRunning, nil
	}
	if err := safesocket.PrepareDir(p.Dir()); err != nil {
		return nil, AlreadyRunning, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	lock, err := runlock.WaitLock(ctx, p.SpawnLock())
	if err != nil {
		return nil, AlreadyRunning, fmt.Errorf("wait for the spawn lock %s: %w", p.SpawnLock(), err)
	}
	defer lock.Release()
	if st := s.waitOld(ctx); st != nil {
		return st, AlreadyRunning, nil
	}
	if ctx.Err() != nil {
		return nil, AlreadyRunning, fmt.Errorf("the daemon holding %s%s neither became ready nor exited within %s: if it is draining, retry once it has exited; if it is wedged, run `kache daemon restart`",
			p.RunLock(), statefile.HolderHint(p.StateFile()), timeout)
	}
	if st := s.startManaged(ctx); st != nil {
		return st, StartedManaged, nil
	}
	st, err := s.spawn(ctx)
	return st, StartedSpawned, err
}

// Running is the status of a daemon that answers and is running (not
// draining toward its exit), or nil.
func (s *Starter) Running(ctx context.Context) *rpc.Status {
	c := &rpc.Client{Socket: s.Paths.Socket, Epoch: s.Epoch, CallTimeout: StatusTimeout}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil || st.State != string(states.Running) {
		return nil
	}
	return st
}

// startManaged starts an installed service through its manager, so that a
// daemon that exited idle comes back managed (launchd has no socket
// activation) rather than as an unmanaged child of some build. nil: not
// installed, or the manager did not bring it up; the caller spawns one.
func (s *Starter) startManaged(ctx context.Context) *rpc.Status {
	if !service.Status(s.Service).Installed {
		return nil
	}
	if err := service.Restart(ctx, s.Service); err != nil {
		s.warn(fmt.Sprintf("the service manager did not start the daemon (%v); starting it directly", err))
		return nil
	}
	var st *rpc.Status
	_ = poll.Until(ctx, poll.Real, 10*time.Millisecond, managedStartWait, func() bool {
		st = s.Running(ctx)
		return st != nil
	})
	return st
}

// waitOld waits while a daemon holds the run lock: one that is starting
// (return it once it runs) or draining toward its exit (return nil once it
// has gone, so a fresh one can be started).
func (s *Starter) waitOld(ctx context.Context) *rpc.Status {
	var st *rpc.Status
	_ = poll.Until(ctx, poll.Real, 50*time.Millisecond, poll.Forever, func() bool { // ctx bounds it
		if !runlock.LockHeld(s.Paths.RunLock()) {
			return true
		}
		st = s.Running(ctx)
		s.progress("waiting for the daemon holding " + s.Paths.RunLock() + " to become ready or exit")
		return st != nil
	})
	return st
}

// spawn starts the daemon in the background and waits for it to say it is
// ready (spawn's readiness pipe: no polling); on failure the error carries
// the log's last lines.
func (s *Starter) spawn(ctx context.Context) (*rpc.Status, error) {
	p := s.Paths
	child, err := spawn.Start(spawn.Options{Exe: s.Argv[0], Args: s.Argv[1:], Env: s.Env, LogPath: p.LogFile()})
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", s.Argv[0], err)
	}
	s.progress("waiting for the daemon to answer on " + p.Socket)
	var st *rpc.Status
	answers := func(ctx context.Context) error { // also: another daemon won the race
		if st = s.Running(ctx); st == nil {
			return errors.New("no daemon answers as running")
		}
		return nil
	}
	if err = child.WaitReady(ctx, answers); err == nil && st == nil {
		err = answers(ctx)
	}
	if err != nil {
		return nil, startFailure(p, err)
	}
	return st, nil
}

// startFailure explains a failed start with the tail of the daemon log.
func startFailure(p config.Paths, err error) error {
	lines, _ := logtail.Tail(p.LogFile(), logTailLines)
	tail := strings.Join(lines, "\n  ")
	if tail == "" {
		tail = "(empty)"
	}
	return fmt.Errorf("the daemon did not start: %w\nlast lines of %s:\n  %s\nfix the cause above, or see `kache daemon log`", err, p.LogFile(), tail)
}

func (s *Starter) progress(msg string) {
	if s.Progress != nil {
		s.Progress(msg)
	}
}

func (s *Starter) warn(msg string) {
	if s.Warn != nil {
		s.Warn(msg)
	}
}

// Successor starts, without waiting for it, a daemon that takes over once
// the draining one has exited (`--successor`), with environ as its
// environment. If one already waits, none is started: the waiting one
// replays the spool.
func (s *Starter) Successor(environ []string) error {
	if runlock.LockHeld(s.Paths.NextLock()) {
		return nil
	}
	argv := append(append([]string{}, s.Argv...), "--successor")
	child, err := spawn.Start(spawn.Options{Exe: argv[0], Args: argv[1:], Env: environ, LogPath: s.Paths.LogFile()})
	if err == nil {
		child.Detach()
	}
	return err
}
