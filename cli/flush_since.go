package cli

import (
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/regfile"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// Uploads that finished before flush was called are reported too: those
// since the last flush, as the daemon's events log records them, so that
// `kache upload ...; kache flush` receipts what the upload handed over
// even when the daemon was quicker than the flush.

// flushMark is the file holding when the last flush ended.
func flushMark(p config.Paths) string { return filepath.Join(p.CacheDir, "flush.mark.json") }

type markRecord struct {
	At time.Time `json:"at"`
}

// lastFlush is when the last flush ended; zero if none did.
func lastFlush(p config.Paths) time.Time {
	var m markRecord
	if data, err := regfile.ReadFile(flushMark(p), 4096); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m.At
}

// markFlush records that a flush ended at at: the next one reports what
// finished after it.
func markFlush(p config.Paths, at time.Time) {
	data, _ := json.Marshal(markRecord{At: at.UTC()})
	_ = atomicfile.WriteFile(flushMark(p), data, 0o600, atomicfile.ProcessSafe)
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
