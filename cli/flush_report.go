package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kunobi-ninja/kache/rpc"
)

// confirm reads every confirmed entry back from the remote through the
// daemon: its receipt. An entry the remote does not have after all is
// failed, not confirmed.
func confirm(ctx context.Context, w *rpc.Wrapper, items []*flushItem) error {
	var keys []string
	byKey := map[string]*flushItem{}
	for _, it := range items {
		if it.Status == "confirmed" {
			keys, byKey[it.Key] = append(keys, it.Key), it
		}
	}
	for chunk := range slices.Chunk(keys, rpc.MaxReceiptKeys) {
		rs, err := w.Client.Receipts(ctx, chunk)
		if rpc.Offline(err) { // the daemon exited meanwhile (idle): start one to ask
			if serr := w.StartGuarded(ctx); serr == nil {
				rs, err = w.Client.Receipts(ctx, chunk)
			}
		}
		if err != nil {
			return fmt.Errorf("read the receipts back from the remote: %w", err)
		}
		for _, r := range rs {
			if it := byKey[r.Key]; it != nil {
				it.Remote, it.Object, it.Bytes, it.SHA256, it.Error = r.Remote, r.Object, r.Bytes, r.SHA256, r.Error
				if r.Error != "" {
					it.Status = "failed"
				}
			}
		}
	}
	return nil
}

// flushReport is the --json output.
type flushReport struct {
	Confirmed int          `json:"confirmed"`
	Failed    int          `json:"failed"`
	Pending   int          `json:"pending"`
	Entries   []*flushItem `json:"entries"`
}

func reportFlush(env *Env, items []*flushItem, asJSON bool) error {
	rep := flushReport{Entries: items}
	if rep.Entries == nil {
		rep.Entries = []*flushItem{}
	}
	for _, it := range items {
		switch it.Status {
		case "confirmed":
			rep.Confirmed++
		case "failed":
			rep.Failed++
		default:
			rep.Pending++
		}
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printFlush(env, rep)
	}
	switch {
	case rep.Failed > 0:
		return quiet(fmt.Errorf("%w: %d of %d", ErrFlushFailed, rep.Failed, len(items)))
	case rep.Pending > 0:
		return quiet(fmt.Errorf("%w: %d of %d", ErrFlushTimeout, rep.Pending, len(items)))
	}
	return nil
}

func printFlush(env *Env, rep flushReport) {
	for _, it := range rep.Entries {
		switch it.Status {
		case "confirmed":
			fmt.Fprintf(env.Stdout, "confirmed  %s  %d bytes  sha256:%s  %s %s\n", it.Key, it.Bytes, it.SHA256, it.Remote, it.Object)
		case "failed":
			fmt.Fprintf(env.Stdout, "failed     %s  %s\n", it.Key, it.Error)
		default:
			fmt.Fprintf(env.Stdout, "pending    %s  (still in the spool: %s)\n", it.Key, it.Path)
		}
	}
	fmt.Fprintf(env.Stdout, "%d confirmed, %d failed, %d pending\n", rep.Confirmed, rep.Failed, rep.Pending)
}
