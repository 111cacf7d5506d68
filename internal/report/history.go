package report

import (
	"context"
	"fmt"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/history"
)

// historyProbe bounds the probe that finds the live generation: a daemon
// too slow to answer is found by its state file and run lock all the
// same, so waiting longer would change nothing.
const historyProbe = 500 * time.Millisecond

// HistoryFile is the lifecycle history, history.jsonl.
func HistoryFile(p config.Paths) string { return history.File(p.CacheDir) }

// History reads the lifecycle history, newest first, with the live
// daemon's generation marked running (daemonctl.Probe finds it: its
// answer, or its state file while it holds the run lock). Never nil.
func History(ctx context.Context, p config.Paths) ([]history.Generation, error) {
	gens, err := history.Load(HistoryFile(p))
	if err != nil {
		return nil, fmt.Errorf("read the lifecycle history: %w", err)
	}
	if pid, started, ok := daemonctl.Probe(ctx, p, 0, historyProbe).Live(); ok {
		history.Mark(gens, pid, started)
	}
	if gens == nil {
		gens = []history.Generation{}
	}
	return gens, nil
}
