package cli

import (
	"strconv"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
)

// startedByEnv mirrors supervisor.StartedByEnv (the client does not link
// supervisor): why a spawned daemon was started, for its lifecycle history.
const startedByEnv = "KACHE_STARTED_BY"

// withStartedBy adds the start reason to a spawned daemon's environment;
// an empty reason is "auto-started by a client".
func withStartedBy(environ []string, why string) []string {
	if why == "" {
		why = "auto:client"
	}
	return append(environ, startedByEnv+"="+why)
}

// successorOf is the start reason of a successor: the draining daemon's
// pid, from its state file (0 if unknown).
func successorOf(p config.Paths) string {
	return "successor:" + strconv.Itoa(daemonctl.StatePid(p))
}
