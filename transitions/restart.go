package transitions

import (
	"github.com/kunobi-ninja/kache/states"
	"github.com/looplab/fsm"
)

// RestartTransition is a row of the restart escalation's table.
type RestartTransition = Row[states.RestartEvent, states.RestartStep]

// Restart is the three-tier escalation of `kache daemon restart`: ask the
// service manager, else (or if that fails) kill what lingers and wipe its
// files, then spawn a fresh daemon.
var Restart = []RestartTransition{
	{states.ServiceInstalled, []states.RestartStep{states.RestartCheck}, states.RestartKickstart},
	{states.NoService, []states.RestartStep{states.RestartCheck}, states.RestartKill},
	{states.Recovered, []states.RestartStep{states.RestartKickstart, states.RestartSpawn}, states.RestartDone},
	{states.StepFailed, []states.RestartStep{states.RestartKickstart}, states.RestartKill},
	{states.Cleared, []states.RestartStep{states.RestartKill}, states.RestartSpawn},
	{states.StepFailed, []states.RestartStep{states.RestartKill, states.RestartSpawn}, states.RestartFailed},
}

// NewRestart builds the restart machine in states.RestartCheck.
func NewRestart(callbacks fsm.Callbacks) *fsm.FSM {
	return build(states.RestartCheck, Restart, callbacks)
}

// RestartMermaid renders the restart diagram as looplab/fsm draws it.
func RestartMermaid() (string, error) {
	return fsm.VisualizeWithType(NewRestart(nil), fsm.MermaidStateDiagram)
}
