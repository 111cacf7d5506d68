package cli

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/report"
)

// runLog is `kache daemon log`: the last lines, then follow like tail -F
// across rotations until interrupted.
func runLog(ctx context.Context, env *Env, lines int, follow bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	if lines < 0 {
		return usagef("--lines must be 0 or more, not %d", lines)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return report.Log(ctx, p, lines, follow, env.Stdout)
}
