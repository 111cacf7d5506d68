package testenv

import (
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
)

// UploadStart is when one upload attempt recorded in an events log began.
type UploadStart struct {
	Key   string
	Began time.Time
}

// UploadStarts lists the successful uploads (done or skipped) in the
// events log with when each began; keep, if not nil, chooses the keys.
// An event's Ms is whole milliseconds, so Began is up to 1 ms early:
// never later than the truth.
func UploadStarts(eventsFile string, keep func(key string) bool) []UploadStart {
	var out []UploadStart
	eventlog.Read(eventsFile, func(e eventlog.Event) {
		if e.Kind != eventlog.UploadDone && e.Kind != eventlog.UploadSkipped {
			return
		}
		if keep == nil || keep(e.Key) {
			out = append(out, UploadStart{e.Key, e.TS.Add(-time.Duration(e.Ms+1) * time.Millisecond)})
		}
	})
	return out
}
