// Package history is the daemon's lifecycle record, <cache>/history.jsonl:
// one JSON line per event of each daemon generation (how it started, every
// state change with its cause, how it ended). The daemon appends to it
// while it holds the run lock, so there is one writer; clients and the
// monitor only read it, which works whether or not a daemon runs. It links
// nothing but the standard library, so the client can read it cheaply.
package history

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"
)

// MaxSize is the size past which the file is rotated to <file>.1, keeping
// one previous generation: a few thousand daemon generations fit.
const MaxSize = 256 << 10

// Kinds of records.
const (
	KindStart = "start"
	KindState = "state"
	KindEnd   = "end"
)

// File is the history file in the cache dir, beside events.jsonl.
func File(cacheDir string) string { return filepath.Join(cacheDir, "history.jsonl") }

// Record is one line. Pid and Started name the generation it belongs to
// (a pid alone could be reused); the other fields depend on Kind.
type Record struct {
	TS      time.Time `json:"ts"`
	Kind    string    `json:"kind"`
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"`

	// start
	How           string `json:"how,omitempty"` // see Start
	Version       string `json:"version,omitempty"`
	Epoch         int64  `json:"epoch,omitempty"`
	Exe           string `json:"exe,omitempty"`
	Config        string `json:"config,omitempty"` // fingerprint of the effective config
	RestartReason string `json:"restart_reason,omitempty"`
	Predecessor   int    `json:"predecessor,omitempty"` // the pid whose drain this one waited for

	// state
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Event string `json:"event,omitempty"`
	Cause string `json:"cause,omitempty"`

	// end
	Reason  string `json:"reason,omitempty"` // stop, idle, epoch_stale, forced
	Code    int    `json:"code,omitempty"`
	Drained int    `json:"drained,omitempty"`
	Left    int    `json:"left,omitempty"`
	Failed  int    `json:"failed,omitempty"`
	Message string `json:"message,omitempty"`
}

// Writer appends records for one generation. A nil *Writer writes
// nothing; a write error is returned for the log and never stops the
// daemon.
type Writer struct {
	path    string
	limit   int64
	pid     int
	started time.Time

	mu sync.Mutex
}

// NewWriter returns the writer of the generation pid started at started.
// During a hand-over two generations append at once (the successor and
// its draining predecessor): each record is one O_APPEND write, whole in
// the file, and only the writer whose file is still at the path rotates.
func NewWriter(path string, pid int, started time.Time) *Writer {
	return &Writer{path: path, limit: MaxSize, pid: pid, started: started.UTC()}
}

// Append stamps r with the generation and the time, and appends it. The
// file is opened per record: records are rare (a handful per generation)
// and a short-lived handle leaves nothing to close on a crash.
func (w *Writer) Append(r Record) error {
	if w == nil {
		return nil
	}
	r.Pid, r.Started = w.pid, w.started
	if r.TS.IsZero() {
		r.TS = time.Now().UTC()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("history: encode: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.write(append(line, '\n'))
}

func (w *Writer) write(line []byte) error {
	f, err := regfile.OpenAppend(w.path, 0o600)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	_, werr := f.Write(line)
	fi, serr := f.Stat()
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("history: write %s: %w", w.path, werr)
	}
	if serr == nil && fi.Size() >= w.limit && stillAt(w.path, fi) {
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("history: rotate %s: %w", w.path, err)
		}
	}
	return nil
}

// stillAt reports whether the file fi describes is still at path: not
// rotated away by the other generation, whose rename would otherwise be
// repeated over the .1 it just made.
func stillAt(path string, fi os.FileInfo) bool {
	now, err := os.Stat(path)
	return err == nil && os.SameFile(now, fi)
}
