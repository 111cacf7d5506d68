package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kunobi-ninja/kache/internal/receipt"
	ucli "github.com/urfave/cli/v2"
)

// Errors of `kache flush`, which main maps to their own exit codes
// (docs/exit-codes.md) so that a CI job can fail on a lost cache write.
var (
	// ErrFlushFailed: an entry handed over failed permanently (exit 4).
	ErrFlushFailed = receipt.ErrFailed
	// ErrFlushTimeout: the timeout passed with uploads still pending and
	// none failed (exit 5). Their intents stay in the spool.
	ErrFlushTimeout = receipt.ErrPending
)

func flushCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "flush",
		Usage: "wait until every upload handed over before now is confirmed by the remote, and print a receipt for each",
		Description: "Takes the intents in the spool when it starts (and those in upload-queue/failed), starts the\n" +
			"daemon if intents wait and none runs, and waits until each is confirmed by the remote (read back:\n" +
			"its object, size and SHA-256) or has failed permanently. It only reads: nothing is deleted.\n" +
			"Exit codes: 0 all confirmed; 4 any failed permanently (see `kache upload --retry-failed`);\n" +
			"5 the timeout passed with uploads pending (they stay in the spool); 3 no daemon could be started.",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long to wait for the remote"},
			&ucli.BoolFlag{Name: "json", Usage: "print the receipts as JSON (docs/observability.md)"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("flush takes no arguments")
			}
			if c.Duration("timeout") <= 0 {
				return usagef("--timeout must be positive, not %s", c.Duration("timeout"))
			}
			return runFlush(c.Context, env, c.Duration("timeout"), c.Bool("json"))
		},
	}
}

func runFlush(ctx context.Context, env *Env, timeout time.Duration, asJSON bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	env.startedBy = "auto:flush"
	w := newWrapper(env, p, env.epoch())
	defer w.Client.Close()
	items, err := receipt.Flush(ctx, w, p, timeout)
	if err != nil {
		return err
	}
	rep := receipt.Tally(items)
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printFlush(env, rep)
	}
	if err := rep.Err(); err != nil {
		return quiet(err)
	}
	return nil
}

func printFlush(env *Env, rep receipt.Report) {
	for _, it := range rep.Entries {
		switch it.Status {
		case receipt.Confirmed:
			fmt.Fprintf(env.Stdout, "confirmed  %s  %d bytes  sha256:%s  %s %s\n", it.Key, it.Bytes, it.SHA256, it.Remote, it.Object)
		case receipt.Failed:
			fmt.Fprintf(env.Stdout, "failed     %s  %s\n", it.Key, it.Error)
		default:
			fmt.Fprintf(env.Stdout, "pending    %s  (still in the spool: %s)\n", it.Key, it.Path)
		}
	}
	fmt.Fprintf(env.Stdout, "%d confirmed, %d failed, %d pending\n", rep.Confirmed, rep.Failed, rep.Pending)
}
