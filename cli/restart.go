package cli

import (
	"context"
	"fmt"

	"github.com/kunobi-ninja/kache/internal/daemonctl"
)

// runRestart is `kache daemon restart`: the three-tier escalation of
// transitions.Restart, reporting which tier brought the daemon back.
func runRestart(ctx context.Context, env *Env) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	env.startedBy = "restart"
	s, err := starter(env, p)
	if err != nil {
		return err
	}
	r := daemonctl.NewRestarter(ctx, s, stopTimeout(env))
	fmt.Fprintf(env.Stdout, "restarting the kache daemon: %s\n", r.Reason)
	res, err := r.Run(ctx)
	for _, s := range res.Steps {
		fmt.Fprintf(env.Stdout, "  %s\n", s)
	}
	if err != nil {
		return fmt.Errorf("restart failed: %w (see `kache daemon log`)", err)
	}
	daemonctl.NewBreaker(p, env.epoch()).Record(nil) // a daemon runs: clients may auto-start again
	fmt.Fprintf(env.Stdout, "kache daemon restarted by tier %d (%s), pid %d\n", res.Tier, r.How, r.NewPid)
	return nil
}
