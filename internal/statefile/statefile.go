// Package statefile reads and writes the small JSON records kept beside the
// socket: the running daemon's state, the last daemon's exit, and the
// reason for a restart. Client and daemon both use them, so they live
// apart from the daemon.
package statefile

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
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
	// RemoteDown: the drain ended early, the remote unreachable; the
	// uploads left wait in the spool.
	RemoteDown bool `json:"remote_down,omitempty"`
	// GaveWayTo is the newer installation's epoch a daemon exited for
	// (exit 75); 0 otherwise. An older client that finds no daemon right
	// after leaves its intents to that installation's daemon.
	GaveWayTo int64 `json:"gave_way_to,omitempty"`
}

// WriteState replaces the state file atomically.
func WriteState(path string, r StateRecord) error { return WriteJSON(path, r) }

// ReadState reads the state file; a missing file is an error wrapping
// fs.ErrNotExist, which callers treat as "no daemon has said anything".
func ReadState(path string) (StateRecord, error) {
	var r StateRecord
	return r, ReadJSON(path, &r)
}

// WriteExit replaces the exit record atomically.
func WriteExit(path string, r ExitRecord) error { return WriteJSON(path, r) }

// ReadExit reads the exit record written by the last daemon.
func ReadExit(path string) (ExitRecord, error) {
	var r ExitRecord
	return r, ReadJSON(path, &r)
}

// WriteJSON writes v as indented JSON through atomicfile: a reader sees the
// old record or the new one, never half of one, even if the writer dies
// mid-write. Without fsync: these records are hints (who runs, why the last
// one stopped), each rewritten by the next daemon and checked against the
// live process before anything acts on them, so a power loss that loses
// the latest costs nothing, while two fsyncs per state change would sit on
// the daemon's start-up path.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600, atomicfile.ProcessSafe)
}

// maxJSON bounds the files kache keeps as JSON (a few hundred bytes).
const maxJSON = 1 << 20

// ReadJSON decodes path into v, naming the file in any error.
func ReadJSON(path string, v any) error {
	data, err := regfile.ReadFile(path, maxJSON)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w (the file is corrupt; it is rewritten by the next daemon)", path, err)
	}
	return nil
}

// RestartRecord is the restart file: why the last restart happened and
// which tier it was on. The daemon it brings up shows it in status.
type RestartRecord struct {
	Reason string    `json:"reason"`
	Tier   int       `json:"tier"`
	At     time.Time `json:"at"`
	OldPid int       `json:"old_pid,omitempty"`
}

// String is the record as status shows it.
func (r RestartRecord) String() string {
	return fmt.Sprintf("%s (tier %d, %s)", r.Reason, r.Tier, r.At.Local().Format(time.DateTime))
}

// WriteRestart writes the restart record atomically.
func WriteRestart(path string, r RestartRecord) error { return WriteJSON(path, r) }

// TakeRestart reads the restart record if it is recent enough to be the
// reason this daemon is starting, and removes it: the first daemon to hold
// the run lock after a restart claims it, so a later plain start does not
// claim to be a restart. The caller must hold the run lock.
func TakeRestart(path string) string {
	var r RestartRecord
	err := ReadJSON(path, &r)
	_ = os.Remove(path)
	if err != nil || time.Since(r.At) > time.Minute {
		return ""
	}
	return r.String()
}

// HolderHint names the pid in the state file at path, if any, for a message
// about the daemon holding the run lock.
func HolderHint(path string) string {
	rec, err := ReadState(path)
	if err != nil || rec.Pid == 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d, state %s)", rec.Pid, rec.State)
}
