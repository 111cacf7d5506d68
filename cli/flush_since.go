package cli

import (
	"encoding/json"
	"path/filepath"
	"time"

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

// eventLine is the part of an events.jsonl line flush reads (the
// uploader's Event, which the client does not link).
type eventLine struct {
	TS    time.Time `json:"ts"`
	Kind  string    `json:"kind"`
	Key   string    `json:"key"`
	Error string    `json:"error"`
}

// maxEventLine bounds one events.jsonl line; longer ones are skipped.
const maxEventLine = 64 << 10

// finishedSince is the last upload outcome of each key since since, from
// the events log and its rotated generation.
func finishedSince(p config.Paths, since time.Time) map[string]eventLine {
	out := map[string]eventLine{}
	events := filepath.Join(p.CacheDir, "events.jsonl")
	for _, path := range []string{events + ".1", events} {
		f, _, err := regfile.Open(path)
		if err != nil {
			continue
		}
		_ = regfile.Lines(f, maxEventLine, func(line []byte) {
			var e eventLine
			if json.Unmarshal(line, &e) != nil || e.TS.Before(since) {
				return
			}
			switch e.Kind {
			case "upload_done", "upload_skipped", "upload_failed":
				out[e.Key] = e
			}
		})
		f.Close()
	}
	return out
}
