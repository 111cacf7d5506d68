package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateRecord is the running daemon's self-description, kept beside the
// socket so that status and restart can say something about a daemon that
// no longer answers (wedged, stopped with SIGSTOP, mid-start).
type StateRecord struct {
	Pid           int       `json:"pid"`
	Version       string    `json:"version"`
	Epoch         int64     `json:"epoch"`
	Exe           string    `json:"exe"`
	State         string    `json:"state"`
	StateSince    time.Time `json:"state_since"`
	Cause         string    `json:"cause"`
	StartedAt     time.Time `json:"started_at"`
	Socket        string    `json:"socket"`
	Log           string    `json:"log"`
	RestartReason string    `json:"restart_reason"`
}

// ExitRecord is what the last daemon left behind when it stopped: why, and
// what its drain did. `daemon stop` prints it once the run lock is free,
// because by then the daemon can no longer answer.
type ExitRecord struct {
	Pid     int       `json:"pid"`
	Reason  string    `json:"reason"`
	Code    int       `json:"code"`
	Drained int       `json:"drained"`
	Left    int       `json:"left"`
	Failed  int       `json:"failed"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// WriteState replaces the state file atomically.
func WriteState(path string, r StateRecord) error { return WriteJSONFile(path, r) }

// ReadState reads the state file; a missing file is an error wrapping
// fs.ErrNotExist, which callers treat as "no daemon has said anything".
func ReadState(path string) (StateRecord, error) {
	var r StateRecord
	return r, ReadJSONFile(path, &r)
}

// WriteExit replaces the exit record atomically.
func WriteExit(path string, r ExitRecord) error { return WriteJSONFile(path, r) }

// ReadExit reads the exit record written by the last daemon.
func ReadExit(path string) (ExitRecord, error) {
	var r ExitRecord
	return r, ReadJSONFile(path, &r)
}

// WriteJSONFile writes v to a temp file in the same directory, syncs it
// and renames it over path, so a reader sees the old record or the new one,
// never half of one, even if the writer dies mid-write. The temp file must
// share the directory: rename is atomic only within one file system.
func WriteJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := writeSynced(tmp, append(data, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeSynced writes, fsyncs and closes f. CreateTemp already made it 0600.
func writeSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadJSONFile decodes path into v, naming the file in any error.
func ReadJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w (the file is corrupt; it is rewritten by the next daemon)", path, err)
	}
	return nil
}
