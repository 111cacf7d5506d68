// Package totals keeps the daemon's counters across restarts in
// <cache>/stats.json: the daemon rewrites it at most once a second and at
// exit, so a SIGKILL loses at most the last second of counts; `kache
// stats` shows them beside the counts of the running daemon, and the
// monitor reads the file when no daemon answers. Standard library only:
// the client reads it.
package totals

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// File is the totals file in the cache dir.
func File(cacheDir string) string { return filepath.Join(cacheDir, "stats.json") }

// Counters are the lasting counts. They match rpc.Stats's counters.
type Counters struct {
	UploadsCompleted int64 `json:"uploads_completed"`
	UploadsSkipped   int64 `json:"uploads_skipped"`
	UploadsFailed    int64 `json:"uploads_failed"`
	BytesUploaded    int64 `json:"bytes_uploaded"`
	Downloads        int64 `json:"downloads"`
	BytesDownloaded  int64 `json:"bytes_downloaded"`
	RemoteHits       int64 `json:"remote_check_hits"`
	RemoteMisses     int64 `json:"remote_check_misses"`
	Builds           int64 `json:"builds"`
}

// Add returns c + o, field by field.
func (c Counters) Add(o Counters) Counters { return c.combine(o, 1) }

// Sub returns c - o, field by field.
func (c Counters) Sub(o Counters) Counters { return c.combine(o, -1) }

func (c Counters) combine(o Counters, sign int64) Counters {
	return Counters{
		UploadsCompleted: c.UploadsCompleted + sign*o.UploadsCompleted,
		UploadsSkipped:   c.UploadsSkipped + sign*o.UploadsSkipped,
		UploadsFailed:    c.UploadsFailed + sign*o.UploadsFailed,
		BytesUploaded:    c.BytesUploaded + sign*o.BytesUploaded,
		Downloads:        c.Downloads + sign*o.Downloads,
		BytesDownloaded:  c.BytesDownloaded + sign*o.BytesDownloaded,
		RemoteHits:       c.RemoteHits + sign*o.RemoteHits,
		RemoteMisses:     c.RemoteMisses + sign*o.RemoteMisses,
		Builds:           c.Builds + sign*o.Builds,
	}
}

// Totals is the file's content: the counters since Since, and how many
// daemon generations ended for each reason (stop, idle, epoch_stale,
// forced, killed: no exit recorded), the restarts a fleet wants to see.
type Totals struct {
	Since     time.Time        `json:"since"`
	UpdatedAt time.Time        `json:"updated_at"`
	Counters  Counters         `json:"counters"`
	Ends      map[string]int64 `json:"ends,omitempty"`
}

// Load reads the file; a missing file is zero totals counted from now.
func Load(path string) (Totals, error) {
	var t Totals
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Totals{Since: time.Now().UTC()}, nil
	}
	if err != nil {
		return t, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return t, fmt.Errorf("read %s: %w (corrupt; `kache stats --reset` starts it afresh)", path, err)
	}
	return t, nil
}

// Save writes the file atomically (temp + rename) without fsync: losing
// the last second to a power cut is allowed, a torn file is not.
func Save(path string, t Totals) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode totals: %w", err)
	}
	return atomicfile.WriteFile(path, data, 0o600, atomicfile.ProcessSafe)
}
