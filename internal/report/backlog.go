package report

import (
	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/bytesize"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// Backlog is what waits in the spool: the intents and the bytes of the
// sources they name.
type Backlog struct {
	Intents int
	Bytes   int64
}

// SpoolBacklog reads every intent in the spool and sizes its source: a
// walk, so a caller that redraws asks at most once a second.
func SpoolBacklog(p config.Paths) Backlog {
	s := spool.Summarize(p.SpoolDir())
	return Backlog{Intents: s.Intents, Bytes: s.Bytes}
}

// Size is the bytes for people (1.5 MiB).
func (b Backlog) Size() string { return bytesize.Format(b.Bytes) }
