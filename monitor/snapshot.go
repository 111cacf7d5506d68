// Package monitor is `kache monitor`: what the daemon is doing, from the
// daemon when it answers and from the files on disk when it does not (the
// store, the spool, the events log, the lifecycle history, the state and
// exit records, the wrappers' builds.jsonl), so every view stays filled
// while it is offline. It only
// reads: it never starts, stops or restarts the daemon, and it asks with
// client epoch 0 so that no request of its own can make a daemon restart
// for a newer binary. It is linked only by kache-monitor, so the client
// every compile starts carries none of the terminal UI.
package monitor

import (
	"context"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/totals"
	"github.com/kunobi-ninja/kache/rpc"
)

// Snapshot is everything one refresh shows.
type Snapshot struct {
	At      time.Time      `json:"at"`
	Binary  Binary         `json:"binary"`
	Online  bool           `json:"online"`
	Daemon  *rpc.Status    `json:"daemon,omitempty"`  // its answer, when online
	Stats   *rpc.Stats     `json:"stats,omitempty"`   // its counters, when online
	Offline *Offline       `json:"offline,omitempty"` // why not, when offline
	Totals  *totals.Totals `json:"totals,omitempty"`  // across restarts (stats, else the file)
	Store   Store          `json:"store"`
	Spool   spool.Summary  `json:"spool"`
	Failed  []Failed       `json:"failed,omitempty"` // newest first, at most maxFailed
	FailedN int            `json:"failed_count"`
	Recent  []Event        `json:"recent,omitempty"` // transfer events, newest first
	// Uploading is the oldest uploads in flight, with their sources\' sizes.
	Uploading []Flight             `json:"uploading,omitempty"`
	History   []history.Generation `json:"history,omitempty"`
	// Build is the current (or last) cargo build, from builds.jsonl.
	Build         *Build `json:"build,omitempty"`
	BuildLogError string `json:"build_log_error,omitempty"` // why builds.jsonl was not read
	// GoSession is the go command's latest cache-program session.
	GoSession *GoSession `json:"go_session,omitempty"`
}

// Binary is the kache installation the monitor belongs to.
type Binary struct {
	Version string `json:"version"`
	Epoch   int64  `json:"epoch"`
	Exe     string `json:"exe"`
}

// Offline says why no daemon answered, and what the files say of the last one.
type Offline struct {
	Cause     string                 `json:"cause"`
	LastExit  *statefile.ExitRecord  `json:"last_exit,omitempty"`
	StateFile *statefile.StateRecord `json:"state_file,omitempty"`
}

// Flight is one upload in flight.
type Flight struct {
	Key   string    `json:"key"`
	Bytes int64     `json:"bytes"`
	Sent  int64     `json:"sent"` // bytes sent so far (the rate is Sent over the time in flight)
	Since time.Time `json:"since"`
}

// Store is the local store: entries downloaded by remote checks and prefetches.
type Store struct {
	Entries int   `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// Failed is an intent that failed permanently.
type Failed struct {
	Key      string    `json:"key"`
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failed_at"`
}

// Event is one line of the transfer events log.
type Event = eventlog.Event

// Source is where a snapshot comes from.
type Source struct {
	Paths  config.Paths
	Binary Binary
	// ServiceInstalled reports whether a service manager runs the daemon.
	ServiceInstalled func() bool
	// Builds follows builds.jsonl from one refresh to the next; nil reads
	// its last part afresh.
	Builds *Builds
}

const (
	askTimeout = 800 * time.Millisecond // under the one-second refresh
	maxFailed  = 10
	maxRecent  = 12
	maxHistory = 20
)

// Gather takes one snapshot: the daemon's answers if it gives them within
// askTimeout, and the files in every case.
func Gather(ctx context.Context, src Source) Snapshot {
	s := Snapshot{At: time.Now(), Binary: src.Binary}
	h := ask(ctx, src.Paths, &s)
	if !s.Online {
		s.Offline = offline(src, h)
	}
	if s.Totals == nil {
		if t, err := totals.Load(totals.File(src.Paths.CacheDir)); err == nil && !t.UpdatedAt.IsZero() {
			s.Totals = &t
		}
	}
	readFiles(src.Paths, h, &s)
	builds := src.Builds
	if builds == nil {
		builds = NewBuilds(BuildsFile(src.Paths))
	}
	s.Build, s.BuildLogError = builds.Poll()
	s.GoSession = builds.LastGo()
	return s
}

// BuildsFile is the wrappers' log of invocations.
func BuildsFile(p config.Paths) string { return filepath.Join(p.CacheDir, "builds.jsonl") }

// ask probes the daemon (daemonctl.Probe, with epoch 0) and, if it
// answers, asks for its counters too.
func ask(ctx context.Context, p config.Paths, s *Snapshot) daemonctl.Report {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	h := daemonctl.Probe(ctx, p, 0, askTimeout)
	st := h.Status
	if st == nil {
		return h
	}
	c := &rpc.Client{Socket: p.Socket, DialTimeout: askTimeout, CallTimeout: askTimeout}
	defer c.Close()
	s.Online, s.Daemon = true, st
	for _, u := range st.Queue.Uploading {
		s.Uploading = append(s.Uploading, Flight{Key: u.Key, Bytes: spool.SourceSize(u.Path), Sent: u.Sent, Since: u.Since})
	}
	if stats, err := c.Stats(ctx); err == nil {
		s.Stats, s.Totals = stats, stats.Totals
	}
	return h
}
