package transitions

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/states"
	"github.com/looplab/fsm"
)

var update = flag.Bool("update", false, "rewrite the diagrams in docs/states.md")

// statesDoc is the document that shows the diagrams looplab/fsm renders.
const statesDoc = "../docs/states.md"

// diagrams maps each marker name in statesDoc to the diagram it holds.
var diagrams = []struct {
	name   string
	render func() (string, error)
}{
	{"daemon", Mermaid},
	{"restart", RestartMermaid},
}

// markers are the lines around a diagram in statesDoc.
func markers(name string) (begin, end string) {
	return "<!-- BEGIN " + name + " diagram -->\n", "<!-- END " + name + " diagram -->\n"
}

// block is what goes between the markers: the diagram as a Mermaid block.
func block(diagram string) string { return "```mermaid\n" + diagram + "```\n" }

// TestDiagramsInDocs keeps docs/states.md's diagrams identical to what the
// tables render: run `go test ./transitions -update` after changing a table.
func TestDiagramsInDocs(t *testing.T) {
	data, err := os.ReadFile(statesDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, d := range diagrams {
		diagram, err := d.render()
		if err != nil {
			t.Fatal(err)
		}
		begin, end := markers(d.name)
		before, rest, ok1 := strings.Cut(doc, begin)
		got, after, ok2 := strings.Cut(rest, end)
		if !ok1 || !ok2 {
			t.Fatalf("%s lacks the %q ... %q markers", statesDoc, begin, end)
		}
		want := block(diagram)
		switch {
		case got == want:
		case *update:
			doc = before + begin + want + end + after
		default:
			t.Errorf("%s diagram in %s is out of date; run `go test ./transitions -update`\n got:\n%s\nwant:\n%s", d.name, statesDoc, got, want)
		}
	}
	if *update && doc != string(data) {
		if err := os.WriteFile(statesDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDocsNameEveryStateAndEvent: the tables in docs/states.md have a row
// for every state and every event.
func TestDocsNameEveryStateAndEvent(t *testing.T) {
	data, err := os.ReadFile(statesDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states.All {
		if !strings.Contains(string(data), "| `"+string(s)+"` |") {
			t.Errorf("%s has no table row for state %s", statesDoc, s)
		}
	}
	for _, e := range states.AllEvents {
		if !strings.Contains(string(data), "| `"+string(e)+"` |") {
			t.Errorf("%s has no table row for event %s", statesDoc, e)
		}
	}
}

// TestDaemonTableUsesDeclaredNames: every state and event in the table is
// one of states.All and states.AllEvents, and every declared one is used.
func TestDaemonTableUsesDeclaredNames(t *testing.T) {
	usedStates, usedEvents := names(Daemon)
	for s := range usedStates {
		if !slices.Contains(states.All, states.State(s)) {
			t.Errorf("table state %q is not in states.All", s)
		}
	}
	for e := range usedEvents {
		if !slices.Contains(states.AllEvents, states.Event(e)) {
			t.Errorf("table event %q is not in states.AllEvents", e)
		}
	}
	for _, s := range states.All {
		if !usedStates[string(s)] {
			t.Errorf("state %s is declared but in no transition", s)
		}
	}
	for _, e := range states.AllEvents {
		if !usedEvents[string(e)] {
			t.Errorf("event %s is declared but in no transition", e)
		}
	}
}

// TestDaemonTableShape: every state is reachable from starting, stopped is
// reachable from every state, and nothing leaves stopped.
func TestDaemonTableShape(t *testing.T) {
	checkShape(t, Daemon, states.Starting, []states.State{states.Stopped})
}

// TestRestartTableShape: every step is reachable from check, every step
// can end in done or failed, and nothing leaves those.
func TestRestartTableShape(t *testing.T) {
	checkShape(t, Restart, states.RestartCheck, []states.RestartStep{states.RestartDone, states.RestartFailed})
}

func checkShape[E, S ~string](t *testing.T, table []Row[E, S], initial S, final []S) {
	t.Helper()
	all, _ := names(table)
	next := map[S][]S{}
	for _, r := range table {
		for _, f := range r.From {
			next[f] = append(next[f], r.To)
		}
	}
	reach := reachable(next, initial)
	for s := range all {
		if !reach[S(s)] {
			t.Errorf("%s is not reachable from %s", s, initial)
		}
		if slices.Contains(final, S(s)) {
			if len(next[S(s)]) > 0 {
				t.Errorf("final state %s has transitions out: %v", s, next[S(s)])
			}
			continue
		}
		if !slices.ContainsFunc(final, func(f S) bool { return reachable(next, S(s))[f] }) {
			t.Errorf("none of %v is reachable from %s", final, s)
		}
	}
}

// reachable is the set of states reachable from start, start included.
func reachable[S ~string](next map[S][]S, start S) map[S]bool {
	seen := map[S]bool{start: true}
	queue := []S{start}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range next[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return seen
}

// TestCheckCallbacks: the keys looplab/fsm honours pass, the ones it would
// silently ignore are named.
func TestCheckCallbacks(t *testing.T) {
	noop := func(context.Context, *fsm.Event) {}
	good := []string{"enter_state", "leave_state", "before_event", "after_event", "enter_running",
		"leave_starting", "before_ready", "after_drain_done", "stopped", "idle_timeout"}
	for _, k := range good {
		if err := CheckDaemonCallbacks(fsm.Callbacks{k: noop}); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	bad := []string{"enter_runing", "enter_ready", "after_running", "before_stopped", "leave_drain_done",
		"enter_states", "on_enter", "Running", ""}
	for _, k := range bad {
		if err := CheckDaemonCallbacks(fsm.Callbacks{k: noop}); err == nil || !strings.Contains(err.Error(), `"`+k+`"`) {
			t.Errorf("%q: err = %v, want it named", k, err)
		}
	}
	if err := CheckRestartCallbacks(fsm.Callbacks{"enter_kickstart": noop, "after_cleared": noop}); err != nil {
		t.Error(err)
	}
	if err := CheckRestartCallbacks(fsm.Callbacks{"enter_running": noop}); err == nil {
		t.Error("a daemon state accepted as a restart callback key")
	}
}

// TestCheckCallbacksMatchesLooplab confirms the check against the library
// itself: every key it accepts fires, and a key it rejects never does.
func TestCheckCallbacksMatchesLooplab(t *testing.T) {
	for _, tc := range []struct {
		key   string
		fires bool
	}{
		{"enter_state", true}, {"enter_running", true}, {"running", true}, {"leave_starting", true},
		{"before_ready", true}, {"after_ready", true}, {"ready", true}, {"before_event", true},
		{"enter_runing", false}, {"after_running", false}, {"enter_ready", false},
	} {
		fired := false
		cb := fsm.Callbacks{tc.key: func(context.Context, *fsm.Event) { fired = true }}
		m := NewDaemon(cb)
		if err := m.Event(context.Background(), string(states.Ready)); err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if fired != tc.fires {
			t.Errorf("%s fired=%v on ready, want %v", tc.key, fired, tc.fires)
		}
		if accepted := CheckDaemonCallbacks(cb) == nil; accepted != tc.fires {
			t.Errorf("%s: CheckDaemonCallbacks accepted=%v but looplab/fsm fires=%v", tc.key, accepted, tc.fires)
		}
	}
}
