// Package buildlog is the record of what the build wrappers did: one JSON
// line per rustc invocation the Rust wrapper handled, and one per go
// command session the cache program served, appended by the wrapper
// processes themselves to <cache>/builds.jsonl. `kache stats`, `kache
// why-miss` and the monitor's Build tab read it; the daemon is not on this
// path, so a build is visible even while the daemon is down.
package buildlog

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"
)

// Outcomes of one invocation.
const (
	LocalHit    = "local_hit"   // restored from the local store, no compiler started
	RemoteHit   = "remote_hit"  // downloaded through the daemon, then restored
	Miss        = "miss"        // compiled, and the entry stored (and handed over)
	Passthrough = "passthrough" // run unchanged: not cacheable, or kache failed (Reason)
	GoSession   = "go_session"  // one `kache cacheprog` session's counts
)

// Record is one line of builds.jsonl.
type Record struct {
	At   time.Time `json:"at"`
	Tool string    `json:"tool"` // "rustc" or "go"
	Pid  int       `json:"pid,omitempty"`
	// Cargo is the cargo process the wrapper ran under (its parent, or
	// the nearest ancestor named cargo when a build script ran it): the
	// build this invocation belongs to (the monitor groups by it).
	Cargo   int     `json:"cargo_pid,omitempty"`
	Crate   string  `json:"crate,omitempty"`
	Types   string  `json:"types,omitempty"` // crate types, comma-separated
	Key     string  `json:"key,omitempty"`
	Outcome string  `json:"outcome"`
	Reason  string  `json:"reason,omitempty"`   // why passthrough, or why a remote check missed
	Ms      float64 `json:"ms"`                 // wall time of the invocation
	SavedMs float64 `json:"saved_ms,omitempty"` // the entry's compile time, on a hit
	Exit    int     `json:"exit"`
	// Inputs is the key's inputs by name → digest, on a miss, so why-miss
	// can name what changed since the crate's previous entry.
	Inputs map[string]string `json:"inputs,omitempty"`
	// Go holds a cache-program session's counts.
	Go *GoCounts `json:"go,omitempty"`
}

// GoCounts is what one `kache cacheprog` session served.
type GoCounts struct {
	Gets       int   `json:"gets"`
	Hits       int   `json:"hits"`
	RemoteHits int   `json:"remote_hits"`
	Misses     int   `json:"misses"`
	Puts       int   `json:"puts"`
	BytesIn    int64 `json:"bytes_in"`  // put bodies written to the store
	BytesOut   int64 `json:"bytes_out"` // hit bodies served
	// CPUMs is the session's own CPU time (user + system), what kache
	// cost the build beyond the go command's work.
	CPUMs float64 `json:"cpu_ms"`
}

// Limit is the size past which the file is rotated to <path>.1.
const Limit = 8 << 20

// MaxLine bounds one line on reading: a longer one is skipped.
const MaxLine = 1 << 20

// Append writes r as one line. Lines under the pipe buffer size are
// written with one write(2) on an O_APPEND descriptor, so concurrent
// wrappers never interleave. Errors are returned for the caller to ignore:
// a record is never worth failing a build.
func Append(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := regfile.OpenAppend(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > Limit {
		_ = os.Rename(path, path+".1") // one writer wins; the others append to the renamed file once more
	}
	_, err = f.Write(b)
	return err
}

// Read calls fn for each record of path's previous generation and then of
// path itself, oldest first; a torn or oversized line is skipped.
func Read(path string, fn func(Record)) error {
	for _, p := range []string{path + ".1", path} {
		if err := readOne(p, fn); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func readOne(path string, fn func(Record)) error {
	f, _, err := regfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return regfile.Lines(io.LimitReader(f, 4*Limit), MaxLine, func(line []byte) {
		var r Record
		if json.Unmarshal(line, &r) == nil {
			fn(r)
		}
	})
}
