package receipt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/regfile"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// Uploads that finished before flush was called are reported too: those
// since the last flush, as the daemon's events log records them, so that
// `kache upload ...; kache flush` receipts what the upload handed over
// even when the daemon was quicker than the flush.

// markFile is the file holding when the last flush ended.
func markFile(p config.Paths) string { return filepath.Join(p.CacheDir, "flush.mark.json") }

type markRecord struct {
	At time.Time `json:"at"`
}

// lastFlush is when the last flush ended; zero if none did.
func lastFlush(p config.Paths) time.Time {
	var m markRecord
	if data, err := regfile.ReadFile(markFile(p), 4096); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m.At
}

// mark records that a flush ended at at: the next one reports what
// finished after it.
func mark(p config.Paths, at time.Time) {
	data, _ := json.Marshal(markRecord{At: at.UTC()})
	_ = atomicfile.WriteFile(markFile(p), data, 0o600, atomicfile.ProcessSafe)
}

// finishedSince is the last upload outcome of each key since since, from
// the events log and its rotated generation.
func finishedSince(p config.Paths, since time.Time) map[string]eventlog.Event {
	out := map[string]eventlog.Event{}
	eventlog.Read(p.EventsFile(), func(e eventlog.Event) {
		if e.TS.Before(since) {
			return
		}
		switch e.Kind {
		case eventlog.UploadDone, eventlog.UploadSkipped, eventlog.UploadFailed:
			out[e.Key] = e
		}
	})
	return out
}

// snapshot is what was handed over before the call: the uploads finished
// since the last flush (confirmed, or failed if still in failed/), the
// intents in the spool (pending), and the intents that failed since the
// last flush.
func snapshot(p config.Paths, since time.Time) []*Item {
	byKey := map[string]*Item{}
	var items []*Item
	put := func(it *Item) {
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
			put(&Item{Key: k, Path: in.Path, CreatedAt: in.CreatedAt, Status: Pending})
		}
	}
	for k, e := range finishedSince(p, since) {
		if e.Kind != eventlog.UploadFailed && byKey[k] == nil {
			put(&Item{Key: k, CreatedAt: e.TS, Status: Confirmed})
		}
	}
	for _, k := range spool.Keys(p.FailedDir()) {
		rec, err := spool.ReadFailed(p.FailedDir(), k)
		if err == nil && !rec.FailedAt.Before(since) && (byKey[k] == nil || byKey[k].Status == Confirmed && !rec.FailedAt.Before(byKey[k].CreatedAt)) {
			put(&Item{Key: k, Path: rec.Path, CreatedAt: rec.CreatedAt, Status: Failed, Error: rec.Error})
		}
	}
	slices.SortFunc(items, func(a, b *Item) int { return strings.Compare(a.Key, b.Key) })
	return items
}

// settle looks at a pending item again. An intent gone from the spool
// failed if failed/ records it since it was written, else the daemon
// removed it once the remote confirmed it.
func settle(p config.Paths, it *Item) {
	if _, err := os.Lstat(spool.File(p.SpoolDir(), it.Key)); err == nil {
		return
	}
	if rec, err := spool.ReadFailed(p.FailedDir(), it.Key); err == nil && !rec.FailedAt.Before(it.CreatedAt) {
		it.Status, it.Error = Failed, rec.Error
		return
	}
	it.Status = Confirmed
}
