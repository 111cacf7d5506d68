package transitions

import (
	"fmt"
	"sort"
	"strings"

	"github.com/looplab/fsm"
)

// CheckDaemonCallbacks reports the first key of cb that looplab/fsm would
// silently ignore on the daemon's machine: NewFSM drops a key that names no
// state or event of the table, so a misspelled hook never runs and nothing
// says so. Tests call it on the callbacks the supervisor passes.
func CheckDaemonCallbacks(cb fsm.Callbacks) error {
	return checkCallbacks(cb, Daemon)
}

// CheckRestartCallbacks is CheckDaemonCallbacks for the restart machine.
func CheckRestartCallbacks(cb fsm.Callbacks) error {
	return checkCallbacks(cb, Restart)
}

func checkCallbacks[E, S ~string](cb fsm.Callbacks, table []Row[E, S]) error {
	keys := make([]string, 0, len(cb))
	for k := range cb {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	states, events := names(table)
	for _, k := range keys {
		if !validKey(k, states, events) {
			return fmt.Errorf("callback key %q names no state or event of the table: looplab/fsm would ignore it", k)
		}
	}
	return nil
}

// validKey mirrors looplab/fsm v1.0.3's NewFSM: before_/after_ take an event
// (or "event" for all), leave_/enter_ a state (or "state"), and a bare name
// is a state's enter hook or an event's after hook.
func validKey(k string, states, events map[string]bool) bool {
	for prefix, all := range map[string]string{"before_": "event", "after_": "event", "leave_": "state", "enter_": "state"} {
		target, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if all == "event" {
			return target == all || events[target]
		}
		return target == all || states[target]
	}
	return states[k] || events[k]
}

// names collects the states and events a table mentions.
func names[E, S ~string](table []Row[E, S]) (states, events map[string]bool) {
	states, events = map[string]bool{}, map[string]bool{}
	for _, r := range table {
		events[string(r.Event)] = true
		states[string(r.To)] = true
		for _, s := range r.From {
			states[string(s)] = true
		}
	}
	return states, events
}
