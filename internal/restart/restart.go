// Package restart runs `kache daemon restart`'s three-tier escalation:
// the machine (transitions.Restart) sequences the tiers, the caller
// supplies the slow steps.
package restart

import (
	"context"
	"fmt"

	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/transitions"
	"github.com/looplab/fsm"
)

// Steps are the slow actions of the restart escalation, supplied by
// the caller; the machine that sequences them is transitions.Restart.
type Steps interface {
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

// Result says which tier brought the daemon back and what each
// step reported on the way.
type Result struct {
	Tier  int
	Steps []string
}

// Restart runs the escalation to done or failed. Each step runs here, on
// the caller's goroutine, between events, never inside an FSM callback.
func Run(ctx context.Context, steps Steps) (Result, error) {
	m := transitions.NewRestart(fsm.Callbacks{})
	var res Result
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
func runStep(ctx context.Context, steps Steps, step states.RestartStep, res *Result) (states.RestartEvent, error) {
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
