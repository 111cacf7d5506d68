package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/rpc"
	ucli "github.com/urfave/cli/v2"
)

// Errors of `kache flush`, which main maps to their own exit codes
// (docs/exit-codes.md) so that a CI job can fail on a lost cache write.
var (
	// ErrFlushFailed: an entry handed over failed permanently (exit 4).
	ErrFlushFailed = errors.New("uploads failed")
	// ErrFlushTimeout: the timeout passed with uploads still pending and
	// none failed (exit 5). Their intents stay in the spool.
	ErrFlushTimeout = errors.New("uploads still pending")
)

const flushPoll = 50 * time.Millisecond

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

// flushItem is one entry flush waits for, and what became of it.
type flushItem struct {
	Key       string    `json:"key"`
	Status    string    `json:"status"` // confirmed, failed, pending
	Path      string    `json:"path"`
	CreatedAt time.Time `json:"created_at"` // when the intent was written
	Remote    string    `json:"remote,omitempty"`
	Object    string    `json:"object,omitempty"`
	Bytes     int64     `json:"bytes,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Error     string    `json:"error,omitempty"`
}

func runFlush(ctx context.Context, env *Env, timeout time.Duration, asJSON bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	env.startedBy = "auto:flush"
	deadline := time.Now().Add(timeout)
	items := flushSnapshot(p, lastFlush(p))
	w := newWrapper(env, p, env.epoch())
	defer w.Client.Close()
	if err := flushWait(ctx, w, p, items, deadline); err != nil {
		return err
	}
	if err := confirm(ctx, w, items, deadline); err != nil {
		return daemonctl.WithLog(p, err)
	}
	markFlush(p, time.Now()) // what finished by now is receipted here, not again next time
	return reportFlush(env, items, asJSON)
}

// flushSnapshot is what was handed over before the call: the uploads
// finished since the last flush (confirmed, or failed if still in
// failed/), the intents in the spool (pending), and the intents that
// failed since the last flush.
func flushSnapshot(p config.Paths, since time.Time) []*flushItem {
	byKey := map[string]*flushItem{}
	var items []*flushItem
	put := func(it *flushItem) {
		if old, ok := byKey[it.Key]; ok {
			*old = *it
			return
		}
		byKey[it.Key] = it
		items = append(items, it)
	}
	// The spool before the events log: an upload that finishes between
	// the two reads is then pending (and settled below), where the other
	// order would miss it in both.
	for _, k := range spool.Keys(p.SpoolDir()) {
		if in, err := spool.ReadIntent(p.SpoolDir(), k); err == nil {
			put(&flushItem{Key: k, Path: in.Path, CreatedAt: in.CreatedAt, Status: "pending"})
		}
	}
	for k, e := range finishedSince(p, since) {
		if e.Kind != eventlog.UploadFailed && byKey[k] == nil {
			put(&flushItem{Key: k, CreatedAt: e.TS, Status: "confirmed"})
		}
	}
	for _, k := range spool.Keys(p.FailedDir()) {
		rec, err := spool.ReadFailed(p.FailedDir(), k)
		if err == nil && !rec.FailedAt.Before(since) && (byKey[k] == nil || byKey[k].Status == "confirmed" && !rec.FailedAt.Before(byKey[k].CreatedAt)) {
			put(&flushItem{Key: k, Path: rec.Path, CreatedAt: rec.CreatedAt, Status: "failed", Error: rec.Error})
		}
	}
	slices.SortFunc(items, func(a, b *flushItem) int { return strings.Compare(a.Key, b.Key) })
	return items
}

// flushWait polls the spool until no item is pending or the deadline
// passes, starting the daemon first if any is pending. An intent gone
// from the spool failed if failed/ records it since it was written, else
// the daemon removed it once the remote confirmed it.
func flushWait(ctx context.Context, w *daemonctl.Wrapper, p config.Paths, items []*flushItem, deadline time.Time) error {
	if pending(items) == 0 {
		return nil
	}
	if err := ensureServing(ctx, w); err != nil {
		return daemonctl.WithLog(p, err)
	}
	err := poll.Until(ctx, poll.Real, flushPoll, max(time.Until(deadline), time.Nanosecond), func() bool {
		for _, it := range items {
			if it.Status == "pending" {
				settle(p, it)
			}
		}
		return pending(items) == 0
	})
	if errors.Is(err, poll.ErrTimeout) {
		return nil // what is still pending is reported as such (exit 5)
	}
	return err
}

// ensureServing starts the daemon (through the crash-loop breaker) if none
// answers, and refuses to wait on one with no remote.
func ensureServing(ctx context.Context, w *daemonctl.Wrapper) error {
	st, err := w.Client.Status(ctx)
	if rpc.Offline(err) {
		if serr := w.StartGuarded(ctx); serr != nil {
			return fmt.Errorf("%w: intents wait but no daemon could be started: %v", ErrNotRunning, serr)
		}
		st, err = w.Client.Status(ctx)
	}
	if err != nil {
		return err
	}
	if st.Remote == "none" {
		return fmt.Errorf("%w: the daemon has no remote configured, so nothing can be confirmed: set [remote] dir or [s3] bucket (KACHE_REMOTE_DIR, KACHE_S3_BUCKET)", ErrFlushTimeout)
	}
	return nil
}

func settle(p config.Paths, it *flushItem) {
	if _, err := os.Lstat(spool.File(p.SpoolDir(), it.Key)); err == nil {
		return
	}
	if rec, err := spool.ReadFailed(p.FailedDir(), it.Key); err == nil && !rec.FailedAt.Before(it.CreatedAt) {
		it.Status, it.Error = "failed", rec.Error
		return
	}
	it.Status = "confirmed"
}

func pending(items []*flushItem) int {
	n := 0
	for _, it := range items {
		if it.Status == "pending" {
			n++
		}
	}
	return n
}
