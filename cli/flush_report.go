package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kunobi-ninja/kache/rpc"
)

// confirm reads every confirmed entry back from the remote through the
// daemon: its receipt. An entry the remote does not have after all is
// failed, not confirmed.
//
// The read-back is bounded by flush's own deadline, not by the client's
// default call timeout; what it could not read back in time is pending
// (exit 5), so flush ends only with its documented codes.
func confirm(ctx context.Context, w *rpc.Wrapper, items []*flushItem, deadline time.Time) error {
	var keys []string
	byKey := map[string]*flushItem{}
	for _, it := range items {
		if it.Status == "confirmed" {
			keys, byKey[it.Key] = append(keys, it.Key), it
		}
	}
	for chunk := range slices.Chunk(keys, rpc.MaxReceiptKeys) {
		w.Client.CallTimeout = max(time.Until(deadline), minReadBack)
		rs, err := w.Client.Receipts(ctx, chunk)
		if rpc.Offline(err) { // the daemon exited meanwhile (idle): start one to ask
			if serr := w.StartGuarded(ctx); serr != nil {
				return fmt.Errorf("%w: read the receipts back: %v", ErrNotRunning, serr)
			}
			rs, err = w.Client.Receipts(ctx, chunk)
		}
		if err != nil {
			unread(chunk, byKey, err)
			continue
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

// minReadBack is the least time the read-back gets, even past the
// deadline the wait for the uploads used up.
const minReadBack = 5 * time.Second

// unread marks keys whose read-back failed as pending, with why.
func unread(keys []string, byKey map[string]*flushItem, err error) {
	for _, k := range keys {
		it := byKey[k]
		it.Status, it.Error = "pending", "uploaded, but the read-back did not finish: "+err.Error()
	}
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
