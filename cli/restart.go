package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/epoch"
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

// runRestart is `kache daemon restart`: the three-tier escalation of
// transitions.Restart, reporting which tier brought the daemon back.
func runRestart(ctx context.Context, env *Env) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	r := &restarter{env: env, p: p, svc: serviceOptions(env, p), epoch: env.epoch()}
	r.reason, r.oldPid = r.diagnose(ctx)
	fmt.Fprintf(env.Stdout, "restarting the kache daemon: %s\n", r.reason)
	res, err := restart.Run(ctx, r)
	for _, s := range res.Steps {
		fmt.Fprintf(env.Stdout, "  %s\n", s)
	}
	if err != nil {
		return fmt.Errorf("restart failed: %w (see `kache daemon log`)", err)
	}
	newAutostartBreaker(p, env.epoch()).Record(nil) // a daemon runs: clients may auto-start again
	fmt.Fprintf(env.Stdout, "kache daemon restarted by tier %d (%s), pid %d\n", res.Tier, tierName(res.Tier), r.newPid)
	return nil
}

func tierName(t int) string {
	return map[int]string{1: "service manager kickstart", 3: "fresh spawn"}[t]
}

// restarter implements restart.Steps for this user's daemon.
type restarter struct {
	env    *Env
	p      config.Paths
	svc    service.Options
	epoch  int64
	reason string
	oldPid int
	newPid int
	// ask: Kill first asks an answering daemon to stop. False once
	// diagnose found it wedged, so Kill does not wait statusTimeout again.
	ask bool
}

// diagnose says why the restart is needed, for the output and the restart
// record, and which pid the old daemon had.
func (r *restarter) diagnose(ctx context.Context) (string, int) {
	c := &rpc.Client{Socket: r.p.Socket, Epoch: r.epoch, CallTimeout: statusTimeout}
	defer c.Close()
	st, err := c.Status(ctx)
	rec, recErr := statefile.ReadState(r.p.StateFile())
	r.ask = err == nil
	switch {
	case err == nil && epoch.Relation(r.epoch, st.Epoch) == epoch.ClientNewer:
		return "the daemon runs an older kache binary", st.Pid
	case err == nil:
		return "requested (the daemon was healthy)", st.Pid
	case runlock.LockHeld(r.p.RunLock()) && rpc.IsNotRunning(err):
		return "the daemon holds its lock but its socket is gone", rec.Pid
	case runlock.LockHeld(r.p.RunLock()):
		return "the daemon did not answer within " + statusTimeout.String() + " (stopped or wedged)", rec.Pid
	case recErr == nil:
		return "stale files left by a daemon that died", rec.Pid
	}
	return "no daemon was running", 0
}

func (r *restarter) record(tier int) {
	_ = statefile.WriteRestart(r.p.RestartFile(), statefile.RestartRecord{Reason: r.reason, Tier: tier, At: time.Now(), OldPid: r.oldPid})
}

// ServiceInstalled: tier 1 applies only to an installed service.
func (r *restarter) ServiceInstalled() bool { return service.Status(r.svc).Installed }

// Kickstart asks the service manager, then waits for a daemon with a new
// pid and this binary's epoch.
func (r *restarter) Kickstart(ctx context.Context) error {
	r.record(1)
	r.ask = true // whatever the manager did, Kill must look afresh
	if err := service.Restart(ctx, r.svc); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, kickstartWait)
	defer cancel()
	for {
		if st := runningStatus(ctx, r.env, r.p); st != nil && st.Pid != r.oldPid && st.Epoch == r.epoch {
			r.newPid = st.Pid
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no fresh daemon answered within %s of the kickstart", kickstartWait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Spawn starts a fresh daemon as `daemon start` does.
func (r *restarter) Spawn(ctx context.Context) error {
	r.record(3)
	r.env.startedBy = "restart"
	st, _, err := ensureDaemon(ctx, r.env, r.p, startTimeout)
	if err != nil {
		return err
	}
	r.newPid = st.Pid
	return nil
}

// Kill stops every daemon proven to be ours for this socket: gracefully
// if it answers, else SIGTERM then SIGKILL. Then it wipes the files they
// left. It never signals a process that is not a kache daemon for this
// socket, whatever pid a stale state file names.
func (r *restarter) Kill(ctx context.Context) error {
	if r.ask && runningStatus(ctx, r.env, r.p) != nil {
		r.stopGracefully(ctx)
	}
	for range killRounds {
		if err := r.killAll(ctx); err != nil {
			return err
		}
		if lockFreed(ctx, r.p.RunLock(), lockReleaseWait) {
			r.wipe()
			return nil
		}
		// A `daemon start` racing us may have started a daemon after we
		// listed them: one that answers fresh is as good as the one tier 3
		// would start; one still starting is killed on the next round.
		if st := runningStatus(ctx, r.env, r.p); st != nil && st.Pid != r.oldPid {
			return nil
		}
	}
	return errors.New("the run lock " + r.p.RunLock() + " is held by a process that is not a kache daemon for this socket; not signalling it: find it with `fuser " + r.p.RunLock() + "`")
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
	deadline := time.Now().Add(d)
	for runlock.LockHeld(path) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// killAll stops every daemon for this socket that runs now.
func (r *restarter) killAll(ctx context.Context) error {
	procs, err := procid.FindDaemons(r.p.Socket)
	if err != nil {
		return err
	}
	for _, pi := range procs {
		if pi.Pid == os.Getpid() {
			continue
		}
		if err := terminate(ctx, pi, r.p.Socket); err != nil {
			return err
		}
	}
	return nil
}

// stopGracefully asks an answering daemon to drain and exit.
func (r *restarter) stopGracefully(ctx context.Context) {
	c := &rpc.Client{Socket: r.p.Socket, Epoch: r.epoch}
	defer c.Close()
	if res, err := c.Shutdown(ctx, "kache daemon restart"); err == nil {
		_ = waitGone(ctx, r.env, r.p, res.Pid, stopTimeout(r.env))
	}
}

// wipe removes the stale socket, lock and state files. The socket file
// stays if something listens on it (a service manager's socket unit).
func (r *restarter) wipe() {
	// Under the run lock, as a starting daemon removes a stale socket: a
	// daemon a service manager restarts meanwhile keeps its files. The lock
	// file itself stays: deleting it would let two processes hold "it".
	lock, err := runlock.TryLock(r.p.RunLock())
	if err != nil {
		return
	}
	defer lock.Release()
	if !safesocket.Alive(r.p.Socket, 200*time.Millisecond) {
		_ = os.Remove(r.p.Socket)
	}
	_ = os.Remove(r.p.StateFile())
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
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !sameProcess(pi, socket) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return !sameProcess(pi, socket)
}
