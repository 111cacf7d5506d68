package daemonctl

import (
	"fmt"
	"strings"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/logtail"
)

// logHintLines is how much of the daemon log an error about the daemon
// shows: enough for a startup error and what led to it.
const logHintLines = 8

// LogHint names the daemon log and shows its last lines, for every error
// that involves the daemon (it did not start, does not answer, the
// crash-loop breaker is open): the cause is usually there.
func LogHint(p config.Paths) string {
	lines, _ := logtail.Tail(p.LogFile(), logHintLines)
	if len(lines) == 0 {
		return fmt.Sprintf("\nthe daemon log %s is empty or missing", p.LogFile())
	}
	return fmt.Sprintf("\nlast lines of %s (`kache daemon log` shows more):\n  %s", p.LogFile(), strings.Join(lines, "\n  "))
}

// WithLog adds LogHint to err; nil stays nil.
func WithLog(p config.Paths, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w%s", err, LogHint(p))
}
