package supervisor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/transitions"
	"github.com/looplab/fsm"
)

// RestartSteps are the slow actions of the restart escalation, supplied by
// the caller; the machine that sequences them is transitions.Restart.
type RestartSteps interface {
	// ServiceInstalled reports whether a service manager owns the daemon.
	ServiceInstalled() bool
	// Kickstart asks the service manager to restart the daemon and waits
	// for a fresh one (new pid, current epoch) to answer. Tier 1.
	Kickstart(ctx context.Context) error
	// Kill signals every lingering daemon for this socket, proven ours,
	// and wipes the stale socket, lock and state files. Tier 2.
	Kill(ctx context.Context) error
	// Spawn starts a fresh daemon and waits for it to answer. Tier 3.
	Spawn(ctx context.Context) error
}

// RestartResult says which tier brought the daemon back and what each
// step reported on the way.
type RestartResult struct {
	Tier  int
	Steps []string
}

// Restart runs the escalation to done or failed. Each step runs here, on
// the caller's goroutine, between events, never inside an FSM callback.
func Restart(ctx context.Context, steps RestartSteps) (RestartResult, error) {
	m := transitions.NewRestart(fsm.Callbacks{})
	var res RestartResult
	ev := states.NoService
	if steps.ServiceInstalled() {
		ev = states.ServiceInstalled
	}
	var lastErr error
	for {
		if err := m.Event(ctx, string(ev)); err != nil {
			return res, fmt.Errorf("restart machine: %w", err)
		}
		step := states.RestartStep(m.Current())
		switch step {
		case states.RestartDone:
			return res, nil
		case states.RestartFailed:
			return res, lastErr
		}
		ev, lastErr = runStep(ctx, steps, step, &res)
	}
}

// runStep performs one step and names the event its outcome fires.
func runStep(ctx context.Context, steps RestartSteps, step states.RestartStep, res *RestartResult) (states.RestartEvent, error) {
	var err error
	tier := map[states.RestartStep]int{states.RestartKickstart: 1, states.RestartKill: 2, states.RestartSpawn: 3}[step]
	switch step {
	case states.RestartKickstart:
		err = steps.Kickstart(ctx)
	case states.RestartKill:
		err = steps.Kill(ctx)
	case states.RestartSpawn:
		err = steps.Spawn(ctx)
	}
	if err != nil {
		res.Steps = append(res.Steps, fmt.Sprintf("tier %d (%s) failed: %v", tier, step, err))
		return states.StepFailed, err
	}
	res.Steps = append(res.Steps, fmt.Sprintf("tier %d (%s) ok", tier, step))
	if step == states.RestartKill {
		return states.Cleared, nil
	}
	res.Tier = tier
	return states.Recovered, nil
}

// RestartRecord is the restart file: why the last restart happened and
// which tier it was on. The daemon it brings up shows it in status.
type RestartRecord struct {
	Reason string    `json:"reason"`
	Tier   int       `json:"tier"`
	At     time.Time `json:"at"`
	OldPid int       `json:"old_pid,omitempty"`
}

// String is the record as status shows it.
func (r RestartRecord) String() string {
	return fmt.Sprintf("%s (tier %d, %s)", r.Reason, r.Tier, r.At.Local().Format(time.DateTime))
}

// WriteRestart writes the restart record atomically.
func WriteRestart(path string, r RestartRecord) error { return WriteJSONFile(path, r) }

// takeRestart reads the restart record if it is recent enough to be the
// reason this daemon is starting, and removes it: the first daemon to hold
// the run lock after a restart claims it, so a later plain start does not
// claim to be a restart. The caller must hold the run lock.
func takeRestart(path string) string {
	var r RestartRecord
	err := ReadJSONFile(path, &r)
	_ = os.Remove(path)
	if err != nil || time.Since(r.At) > time.Minute {
		return ""
	}
	return r.String()
}
