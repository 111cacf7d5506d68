// Package transitions holds the daemon's transition table, and the restart
// escalation's, as data, and builds looplab/fsm machines from them.
package transitions

import (
	"github.com/kunobi-ninja/kache/states"
	"github.com/looplab/fsm"
)

// Row is one row of a transition table: on Event, any of From moves to To.
type Row[E, S ~string] struct {
	Event E
	From  []S
	To    S
}

// Transition is a row of the daemon's table.
type Transition = Row[states.Event, states.State]

// Daemon is the daemon's transition table. Every state change of the daemon
// is one of these rows; the machine refuses anything else.
var Daemon = []Transition{
	{states.Ready, []states.State{states.Starting}, states.Running},
	{states.StopRequested, []states.State{states.Starting, states.Running, states.HandingOver}, states.Draining},
	{states.Signaled, []states.State{states.Starting, states.Running, states.IdleExiting, states.HandingOver}, states.Draining},
	{states.IdleTimeout, []states.State{states.Running}, states.IdleExiting},
	{states.ClientNewer, []states.State{states.Starting, states.Running}, states.HandingOver},
	{states.ClientBuild, []states.State{states.Running}, states.HandingOver},
	{states.ConfigChanged, []states.State{states.Running}, states.HandingOver},
	{states.BinaryChanged, []states.State{states.Running}, states.HandingOver},
	{states.BinaryChanged, []states.State{states.IdleExiting}, states.EpochStale},
	{states.HandoverRetry, []states.State{states.Running}, states.HandingOver},
	{states.SuccessorReady, []states.State{states.HandingOver}, states.HandedOver},
	{states.HandoverFailed, []states.State{states.HandingOver}, states.Running},
	{states.HandoverUnavailable, []states.State{states.HandingOver}, states.EpochStale},
	{states.BinarySame, []states.State{states.HandingOver}, states.Running},
	{states.DrainDone, []states.State{states.Draining, states.IdleExiting, states.EpochStale, states.HandedOver}, states.Stopped},
	{states.Forced, []states.State{states.Starting, states.Running, states.Draining, states.IdleExiting, states.EpochStale,
		states.HandingOver, states.HandedOver}, states.Stopped},
}

// NewDaemon builds the daemon's machine in states.Starting.
func NewDaemon(callbacks fsm.Callbacks) *fsm.FSM {
	return build(states.Starting, Daemon, callbacks)
}

// build turns a table into a looplab/fsm machine.
func build[E, S ~string](initial S, table []Row[E, S], callbacks fsm.Callbacks) *fsm.FSM {
	evs := make(fsm.Events, 0, len(table))
	for _, t := range table {
		src := make([]string, len(t.From))
		for i, s := range t.From {
			src[i] = string(s)
		}
		evs = append(evs, fsm.EventDesc{Name: string(t.Event), Src: src, Dst: string(t.To)})
	}
	return fsm.NewFSM(string(initial), evs, callbacks)
}

// Mermaid renders the daemon's diagram as looplab/fsm draws it.
func Mermaid() (string, error) {
	return fsm.VisualizeWithType(NewDaemon(nil), fsm.MermaidStateDiagram)
}
