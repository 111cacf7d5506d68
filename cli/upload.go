package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/upload"
	"github.com/kunobi-ninja/kache/rpc"
	ucli "github.com/urfave/cli/v2"
)

func uploadCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "upload",
		Usage:     "hand cache entries to the daemon for upload; returns at once",
		ArgsUsage: "[--key KEY PATH] [KEY=PATH ...]",
		Description: "Writes an intent for each entry into the spool, then asks the daemon to upload it, starting the\n" +
			"daemon if it is down. It never fails because of the daemon: at worst the intents wait for the next\n" +
			"daemon. Exit codes: 0 handed over or kept, 2 bad input (bad key, missing path).",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "key", Usage: "key of the single entry given as the one PATH argument"},
			&ucli.StringFlag{Name: "from", Usage: "read KEY=PATH lines from `FILE` (- for stdin)"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
			&ucli.BoolFlag{Name: "retry-failed", Usage: "put the intents in upload-queue/failed back in the spool (once their cause is fixed)"},
		},
		Action: func(c *ucli.Context) error {
			if c.Bool("retry-failed") {
				if c.IsSet("key") || c.IsSet("from") || c.Args().Present() {
					return usagef("--retry-failed takes no entries")
				}
				return runRetryFailed(env)
			}
			entries, err := uploadEntries(c.String("key"), c.Args().Slice(), c.String("from"))
			if err != nil {
				return err
			}
			return runUpload(c.Context, env, entries, c.Bool("quiet"))
		},
	}
}

// uploadEntries collects the entries from --key, KEY=PATH arguments and --from.
func uploadEntries(key string, args []string, from string) ([]upload.Entry, error) {
	var out []upload.Entry
	if key != "" {
		if from != "" {
			return nil, usagef("--key KEY PATH and --from FILE cannot be combined: put the entry in the file as KEY=PATH")
		}
		if len(args) != 1 {
			return nil, usagef("--key takes exactly one PATH argument, got %d", len(args))
		}
		return []upload.Entry{{Key: key, Path: args[0]}}, nil
	}
	for _, a := range args {
		e, err := parsePair(a)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if from != "" {
		more, err := readPairs(from)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	if len(out) == 0 {
		return nil, usagef("nothing to upload: give --key KEY PATH, KEY=PATH arguments, or --from FILE")
	}
	return out, nil
}

func parsePair(s string) (upload.Entry, error) {
	k, p, ok := strings.Cut(s, "=")
	if !ok || k == "" || p == "" {
		return upload.Entry{}, usagef("%q is not KEY=PATH", s)
	}
	return upload.Entry{Key: k, Path: p}, nil
}

func readPairs(name string) ([]upload.Entry, error) {
	f := os.Stdin
	if name != "-" {
		var err error
		if f, err = os.Open(name); err != nil {
			return nil, usagef("--from: %v", err)
		}
		defer f.Close()
	}
	var out []upload.Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parsePair(line)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// runUpload validates every entry first (bad input fails here, before
// anything is written or any daemon is involved), then, chunk by chunk,
// writes the intents and hands them to the daemon (upload.Batch).
func runUpload(ctx context.Context, env *Env, entries []upload.Entry, quietOK bool) error {
	p, err := env.wrapperPaths()
	if err != nil {
		return err
	}
	if err := upload.Check(entries); err != nil {
		return usagef("%v", err)
	}
	if err := upload.Private(p); err != nil {
		return err
	}
	epoch := env.epoch()
	env.startedBy = "auto:upload"
	w := newWrapper(env, p, epoch)
	defer w.Client.Close()
	handed, out, err := upload.Batch(ctx, w, p.SpoolDir(), entries, epoch)
	if err != nil {
		return err
	}
	driftWarning(ctx, env, p, w.Client.SeenConfig)
	return reportUpload(env, p, len(entries), handed, out, quietOK)
}

// reportUpload tells the user where the entries went. It never fails: the
// intents are in the spool whatever became of the daemon.
func reportUpload(env *Env, p config.Paths, n, handed int, out daemonctl.UploadOutcome, quietOK bool) error {
	switch {
	case out.Kept != nil:
		fmt.Fprintf(env.Stderr, "kache: warning: %d upload(s) kept in %s for the next daemon: %v\n", n-handed, p.SpoolDir(), out.Kept)
	case out.HandedOff && !quietOK:
		fmt.Fprintf(env.Stdout, "the daemon is draining toward its exit: %d upload(s) wait in the spool for its successor\n", n-handed)
	}
	if handed > 0 && !quietOK {
		printQueued(env, handed)
	}
	return nil
}

// printQueued reports the handover. It counts what was handed over, not
// the daemon's count of new jobs: the daemon may have taken an entry
// already (its spool watcher sees an intent as soon as it is written), and
// a key given twice is one upload.
func printQueued(env *Env, handed int) {
	fmt.Fprintf(env.Stdout, "queued %d upload(s)\n", handed)
}

// newWrapper is the wrapper-side client: auto-start through the crash-loop
// breaker, for uploads only.
func newWrapper(env *Env, p config.Paths, epoch int64) *daemonctl.Wrapper {
	return &daemonctl.Wrapper{
		Client: &rpc.Client{Socket: p.Socket, Epoch: epoch, Build: env.build},
		Start: func(ctx context.Context) error {
			_, _, err := ensureDaemon(ctx, env, p, startTimeout)
			return err
		},
		Breaker:   daemonctl.NewBreaker(p, epoch),
		Handoff:   func(context.Context) error { return spawnSuccessor(env, p) },
		GaveWayTo: func() int64 { return daemonctl.RecentGiveWay(p, time.Now()) },
	}
}

// spawnSuccessor starts a daemon that takes over once the draining one
// has exited (daemonctl.Starter.Successor).
func spawnSuccessor(env *Env, p config.Paths) error {
	s, err := starter(env, p)
	if err != nil {
		return err
	}
	return s.Successor(withStartedBy(daemonEnv(env, p), successorOf(p)))
}

// runRetryFailed is `kache upload --retry-failed`: the failed intents go
// back to the spool, where a running daemon sees them land and the next
// one replays them.
func runRetryFailed(env *Env) error {
	p, err := env.wrapperPaths()
	if err != nil {
		return err
	}
	n, err := upload.RetryFailed(p)
	fmt.Fprintf(env.Stdout, "put %d failed intent(s) back in %s\n", n, p.SpoolDir())
	if err != nil {
		return fmt.Errorf("some stay in %s: %w", p.FailedDir(), err)
	}
	return nil
}
