package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kunobi-ninja/kache/internal/report"
	ucli "github.com/urfave/cli/v2"
)

func historyCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "history",
		Usage: "show the daemon's lifecycle history: each generation, how it started and why it ended (read-only)",
		Description: "Newest first, one daemon generation a line. A generation with no recorded end was killed\n" +
			"(SIGKILL, OOM) or crashed. Reads " + "<cache>/history.jsonl; never starts the daemon. Exit 0.",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "n", Value: 20, Usage: "show at most `N` generations (0: all)"},
			&ucli.BoolFlag{Name: "json", Usage: "print the generations as a JSON array, every record included (docs/observability.md)"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("history takes no arguments")
			}
			return runHistory(c.Context, env, c.Int("n"), c.Bool("json"))
		},
	}
}

func runHistory(ctx context.Context, env *Env, n int, asJSON bool) error {
	if n < 0 {
		return usagef("-n must be 0 or more, not %d", n)
	}
	p, err := env.paths()
	if err != nil {
		return err
	}
	gens, err := report.History(ctx, p)
	if err != nil {
		return err
	}
	if n > 0 && len(gens) > n {
		gens = gens[:n]
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(gens)
	}
	if len(gens) == 0 {
		fmt.Fprintf(env.Stdout, "no daemon history yet (%s)\n", report.HistoryFile(p))
	}
	for _, g := range gens {
		fmt.Fprintln(env.Stdout, g.Line())
	}
	return nil
}
