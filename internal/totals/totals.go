// Package totals keeps the daemon's counters across restarts in
// <cache>/stats.json: the daemon adds what it counted to the file at most
// once a second and at exit, so a SIGKILL loses at most the last second of
// counts; `kache stats` shows them beside the counts of the running
// daemon, and the monitor reads the file when no daemon answers. Two
// daemons write it during a hand-over (the successor serving, the old one
// draining), so every write is a read-add-write under an flock of
// stats.json.lock: each adds only its own new counts, and none overwrites
// the other's. Standard library only: the client reads it.
package totals

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"

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
	data, err := regfile.ReadFile(path, 1<<20)
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

// IsZero reports whether every counter is zero.
func (c Counters) IsZero() bool { return c == Counters{} }

// Update applies fn to the file's totals under the file's lock and writes
// the result: the one way a daemon changes the file, so that two daemons'
// updates both land.
func Update(path string, fn func(*Totals)) error {
	unlock, err := lock(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	t, err := Load(path)
	if err != nil {
		t = Totals{Since: time.Now().UTC()} // corrupt: start afresh, as the error says
	}
	if t.Ends == nil {
		t.Ends = map[string]int64{}
	}
	fn(&t)
	t.UpdatedAt = time.Now().UTC()
	return Save(path, t)
}

// lock takes an exclusive flock on path, created private if missing; a
// symlink there is refused.
func lock(path string) (unlock func(), err error) {
	f, err := regfile.OpenRW(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing drops the flock
}
