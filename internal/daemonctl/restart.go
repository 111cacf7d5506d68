package daemonctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/restart"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
)

// Bounds of the restart escalation.
const (
	kickstartWait = 10 * time.Second // tier 1: for the managed daemon to answer
	termWait      = 2 * time.Second  // tier 2: SIGTERM before SIGKILL
	killWait      = 2 * time.Second  // tier 2: SIGKILL until gone
)

// Run runs the escalation (internal/restart) to done or failed.
func (r *Restarter) Run(ctx context.Context) (restart.Result, error) { return restart.Run(ctx, r) }

// Restarter is `kache daemon restart`'s escalation for this user's daemon:
// it implements restart.Steps (tier 1 kickstarts the service manager, tier
// 2 kills lingering daemons and wipes their files, tier 3 starts one) and
// remembers why, which daemon it replaced and how the new one came.
type Restarter struct {
	s           *Starter
	stopTimeout time.Duration // a graceful stop's wait: the drain cap and a margin
	Reason      string
	OldPid      int
	NewPid      int
	// ask: Kill first asks an answering daemon to stop. False once
	// diagnose found it wedged, so Kill does not wait StatusTimeout again.
	ask bool
	// how the daemon came back, as the tier that succeeded saw it: tier
	// 3's start may be the service manager's (a socket-activated or
	// launchd daemon), not a spawn of ours.
	How How
}

// NewRestarter diagnoses why the restart is needed (Reason, for the output
// and the restart record) and which pid the old daemon had (OldPid).
func NewRestarter(ctx context.Context, s *Starter, stopTimeout time.Duration) *Restarter {
	r := &Restarter{s: s, stopTimeout: stopTimeout}
	r.Reason, r.OldPid = r.diagnose(ctx)
	return r
}

// diagnose says why the restart is needed and which pid the old daemon had.
func (r *Restarter) diagnose(ctx context.Context) (string, int) {
	h := Probe(ctx, r.s.Paths, r.s.Epoch, StatusTimeout)
	r.ask = h.Answers()
	switch {
	case h.Answers() && epoch.Relation(r.s.Epoch, h.Status.Epoch) == epoch.ClientNewer:
		return "the daemon runs an older kache binary", h.Pid
	case h.Answers():
		return "requested (the daemon was healthy)", h.Pid
	case h.Health == SocketGone:
		return "the daemon holds its lock but its socket is gone", h.Pid
	case h.Health == Wedged:
		return "the daemon did not answer within " + StatusTimeout.String() + " (stopped or wedged)", h.Pid
	}
	if h.State != nil {
		return "stale files left by a daemon that died", h.Pid
	}
	return "no daemon was running", 0
}

func (r *Restarter) record(tier int) {
	_ = statefile.WriteRestart(r.s.Paths.RestartFile(), statefile.RestartRecord{Reason: r.Reason, Tier: tier, At: time.Now(), OldPid: r.OldPid})
}

// ServiceInstalled: tier 1 applies only to an installed service.
func (r *Restarter) ServiceInstalled() bool { return service.Status(r.s.Service).Installed }

// Kickstart asks the service manager, then waits for a daemon with a new
// pid and this binary's epoch.
func (r *Restarter) Kickstart(ctx context.Context) error {
	r.record(1)
	r.ask = true // whatever the manager did, Kill must look afresh
	if err := service.Restart(ctx, r.s.Service); err != nil {
		return err
	}
	err := poll.Until(ctx, poll.Real, 50*time.Millisecond, kickstartWait, func() bool {
		st := r.s.Running(ctx)
		if st != nil && st.Pid != r.OldPid && st.Epoch == r.s.Epoch {
			r.NewPid, r.How = st.Pid, "service manager kickstart"
		}
		return r.NewPid != 0
	})
	if err != nil {
		return fmt.Errorf("no fresh daemon answered within %s of the kickstart", kickstartWait)
	}
	return nil
}

// Spawn starts a fresh daemon as `daemon start` does.
func (r *Restarter) Spawn(ctx context.Context) error {
	r.record(3)
	st, how, err := r.s.Ensure(ctx, StartTimeout)
	if err != nil {
		return err
	}
	r.How = how
	r.NewPid = st.Pid
	return nil
}

// Kill stops every daemon proven to be ours for this socket: gracefully
// if it answers, else SIGTERM then SIGKILL. Then it wipes the files they
// left. It never signals a process that is not a kache daemon for this
// socket, whatever pid a stale state file names.
func (r *Restarter) Kill(ctx context.Context) error {
	if r.ask && r.s.Running(ctx) != nil {
		r.stopGracefully(ctx)
	}
	for range killRounds {
		if err := r.killAll(ctx); err != nil {
			return err
		}
		if lockFreed(ctx, r.s.Paths.RunLock(), lockReleaseWait) {
			r.wipe()
			return nil
		}
		// A `daemon start` racing us may have started a daemon after we
		// listed them: one that answers fresh is as good as the one tier 3
		// would start; one still starting is killed on the next round.
		if st := r.s.Running(ctx); st != nil && st.Pid != r.OldPid {
			return nil
		}
	}
	return errors.New("the run lock " + r.s.Paths.RunLock() + " is held by a process that is not a kache daemon for this socket; not signalling it: find it with `fuser " + r.s.Paths.RunLock() + "`")
}

// killRounds bounds how often Kill lists and stops daemons while starts
// race it.
const killRounds = 5

// lockReleaseWait bounds the wait for a killed daemon's run lock: the
// kernel drops a flock when the last thread of its holder has exited,
// which can come a little after the process stopped looking alive (its
// main thread a zombie, another thread still unwinding).
const lockReleaseWait = time.Second

// lockFreed waits up to d for nobody to hold the lock at path.
func lockFreed(ctx context.Context, path string, d time.Duration) bool {
	return poll.Until(ctx, poll.Real, 20*time.Millisecond, d, func() bool { return !runlock.LockHeld(path) }) == nil
}

// killAll stops every daemon for this socket that runs now.
func (r *Restarter) killAll(ctx context.Context) error {
	procs, err := procid.FindDaemons(r.s.Paths.Socket)
	if err != nil {
		return err
	}
	for _, pi := range procs {
		if pi.Pid == os.Getpid() {
			continue
		}
		if err := terminate(ctx, pi, r.s.Paths.Socket); err != nil {
			return err
		}
	}
	return nil
}

// stopGracefully asks an answering daemon to drain and exit.
func (r *Restarter) stopGracefully(ctx context.Context) {
	c := &rpc.Client{Socket: r.s.Paths.Socket, Epoch: r.s.Epoch}
	defer c.Close()
	if res, err := c.Shutdown(ctx, "kache daemon restart"); err == nil {
		_ = WaitGone(ctx, r.s.Paths, res.Pid, r.stopTimeout, nil)
	}
}

// wipe removes the stale socket, lock and state files. The socket file
// stays if something listens on it (a service manager's socket unit).
func (r *Restarter) wipe() {
	// Under the run lock, as a starting daemon removes a stale socket: a
	// daemon a service manager restarts meanwhile keeps its files. The lock
	// file itself stays: deleting it would let two processes hold "it".
	lock, err := runlock.TryLock(r.s.Paths.RunLock())
	if err != nil {
		return
	}
	defer lock.Release()
	if !safesocket.Alive(r.s.Paths.Socket, 200*time.Millisecond) {
		_ = os.Remove(r.s.Paths.Socket)
	}
	_ = os.Remove(r.s.Paths.StateFile())
}

// terminate sends SIGTERM (and SIGCONT, so a stopped daemon can act on
// it), waits, then SIGKILLs, re-proving the process's identity (pid and
// start time) before each signal.
func terminate(ctx context.Context, pi procid.ProcInfo, socket string) error {
	if !sameProcess(pi, socket) {
		return nil
	}
	_ = syscall.Kill(pi.Pid, syscall.SIGTERM)
	_ = syscall.Kill(pi.Pid, syscall.SIGCONT)
	if waitExit(ctx, pi, socket, termWait) {
		return nil
	}
	if !sameProcess(pi, socket) {
		return nil
	}
	if err := syscall.Kill(pi.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", pi.Pid, err)
	}
	if !waitExit(ctx, pi, socket, killWait) {
		return fmt.Errorf("pid %d survived SIGKILL", pi.Pid)
	}
	return nil
}

// sameProcess: still ours, and still the same process (start time). A
// zombie has an empty command line, so it counts as gone.
func sameProcess(pi procid.ProcInfo, socket string) bool {
	now, ok := procid.IsOurDaemon(pi.Pid, socket)
	return ok && now.StartTime == pi.StartTime
}

func waitExit(ctx context.Context, pi procid.ProcInfo, socket string, d time.Duration) bool {
	return poll.Until(ctx, poll.Real, 20*time.Millisecond, d, func() bool { return !sameProcess(pi, socket) }) == nil
}
