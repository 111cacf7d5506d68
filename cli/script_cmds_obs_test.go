package cli_test

import (
	"strconv"
	"time"

	"github.com/kunobi-ninja/kache/internal/totals"
	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for the observability scenarios (history, totals, flush).
func init() {
	for name, fn := range map[string]func(*testscript.TestScript, bool, []string){
		"waittotal": cmdWaitTotal,
	} {
		if _, dup := scriptCmds[name]; dup {
			panic("script command " + name + " defined twice")
		}
		scriptCmds[name] = fn
	}
}

// cmdWaitTotal waits until the lasting totals file counts N completed
// uploads: what the daemon has flushed to disk, not what it holds.
//
//	waittotal N
func cmdWaitTotal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waittotal N")
	}
	n, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	path := totals.File(paths(ts).CacheDir)
	deadline := time.Now().Add(15 * time.Second)
	for {
		t, err := totals.Load(path)
		if err == nil && t.Counters.UploadsCompleted == n {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waittotal: %s counts %d completed uploads, not %d, after 15s", path, t.Counters.UploadsCompleted, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
