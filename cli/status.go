package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
)

// ErrNotAnswering: a daemon holds the run lock or left a state file but
// does not answer (exit 1, as LSB's "dead but pid file exists").
var ErrNotAnswering = errors.New("daemon not answering")

// statusTimeout bounds status: a stopped (SIGSTOP) daemon accepts
// connections but never answers, and status must still return.
const statusTimeout = 2 * time.Second

// statusReport is `kache daemon status --json`, documented in docs/status.md.
type statusReport struct {
	Binary  binaryInfo   `json:"binary"`
	Service service.Info `json:"service"`
	Running bool         `json:"running"`
	Socket  string       `json:"socket"`
	// ShortSocket: <cache>/daemon.sock was over the OS limit, and Socket is
	// a short stand-in in a per-user directory.
	ShortSocket bool                   `json:"socket_short,omitempty"`
	Log         string                 `json:"log"`
	Daemon      *rpc.Status            `json:"daemon,omitempty"`
	Epoch       *epochNote             `json:"epoch,omitempty"`
	Problem     string                 `json:"problem,omitempty"`
	StateFile   *statefile.StateRecord `json:"state_file,omitempty"`
	LastExit    *statefile.ExitRecord  `json:"last_exit,omitempty"`
	Autostart   *autostartNote         `json:"autostart,omitempty"`
	ConfigDrift *configDrift           `json:"config_drift,omitempty"`
}

// configDrift is set when this shell's effective configuration differs
// from the daemon's: the keys that differ, and what to do.
type configDrift struct {
	Keys []string `json:"keys"`
	Note string   `json:"note"`
}

// noteConfig compares the configuration this command sees with the
// daemon's, by their fields (no secrets are in them).
func noteConfig(env *Env, st *rpc.Status) *configDrift {
	mine, err := config.Load(env.Getenv)
	if err != nil || st.ConfigFields == nil {
		return nil
	}
	keys := config.DiffFields(mine.Fields(), st.ConfigFields)
	if len(keys) == 0 {
		return nil
	}
	return &configDrift{Keys: keys, Note: "the daemon runs another configuration (" + strings.Join(keys, ", ") +
		"): it hands over by itself when config.toml changes; a difference in this shell's KACHE_* variables it cannot see: run `kache daemon restart` from this shell to apply them"}
}

type binaryInfo struct {
	Version string `json:"version"`
	Epoch   int64  `json:"epoch"`           // the newer of the two files' mtimes
	Build   string `json:"build,omitempty"` // Go build ID of the kache-daemon beside it: its content identity
	Exe     string `json:"exe"`
	// Files are the installation's two binaries, each with its own epoch:
	// replacing either makes the pair newer.
	Files []binaryFile `json:"files"`
}

type binaryFile struct {
	Path  string `json:"path"`
	Epoch int64  `json:"epoch"` // 0: missing or unreadable
}

// installFiles lists kache and the kache-daemon beside it.
func installFiles(exe string) []binaryFile {
	files := []binaryFile{{Path: exe, Epoch: epoch.Of(exe)}}
	d, err := install.DaemonPath(exe)
	if err != nil {
		d = filepath.Join(filepath.Dir(exe), install.DaemonName)
	}
	return append(files, binaryFile{Path: d, Epoch: epoch.Of(d)})
}

// epochNote compares this binary with the running daemon.
type epochNote struct {
	Binary   int64  `json:"binary"`
	Daemon   int64  `json:"daemon"`
	Relation string `json:"relation"`
	Note     string `json:"note,omitempty"`
}

// runStatus only reads: it never starts, stops or restarts anything.
func runStatus(ctx context.Context, env *Env, asJSON bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	r := gatherStatus(ctx, env, p)
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printStatus(env.Stdout, r)
	}
	switch {
	case r.Running:
		return nil
	case r.Problem != "":
		if !asJSON {
			fmt.Fprintln(env.Stderr, strings.TrimPrefix(daemonLogHint(p), "\n"))
		}
		return quiet(ErrNotAnswering)
	}
	return quiet(ErrNotRunning)
}

func gatherStatus(ctx context.Context, env *Env, p config.Paths) *statusReport {
	epoch := env.epoch()
	r := &statusReport{Binary: binaryInfo{env.Version, epoch, install.Build(env.Exe), env.Exe, installFiles(env.Exe)}, Socket: p.Socket, Log: p.LogFile(),
		ShortSocket: p.ShortSocket,
		Service:     service.Status(serviceOptions(env, p))}
	c := &rpc.Client{Socket: p.Socket, Epoch: epoch, CallTimeout: statusTimeout}
	defer c.Close()
	st, err := c.Status(ctx)
	if err == nil {
		r.Running, r.Daemon = true, st
		r.Epoch = noteEpoch(epoch, st.Epoch)
		r.ConfigDrift = noteConfig(env, st)
	} else {
		r.Problem = diagnose(p, err)
	}
	if rec, err := statefile.ReadState(p.StateFile()); err == nil && !r.Running {
		r.StateFile = &rec
	}
	if rec, err := statefile.ReadExit(p.ExitFile()); err == nil {
		r.LastExit = &rec
	}
	r.Autostart = readAutostart(p, epoch)
	return r
}

// diagnose explains why the daemon did not answer; "" means plainly not
// running (no lock holder, no socket).
func diagnose(p config.Paths, err error) string {
	held := runlock.LockHeld(p.RunLock())
	switch {
	case held && rpc.IsNotRunning(err):
		return "a process holds the run lock " + p.RunLock() + " but the socket does not accept connections (socket file deleted?): run `kache daemon restart`"
	case held:
		return fmt.Sprintf("the daemon holds the run lock but did not answer within %s (%v): it may be stopped or wedged; run `kache daemon restart`", statusTimeout, err)
	case !rpc.IsNotRunning(err):
		return fmt.Sprintf("something answers on %s but not as a kache daemon (%v)", p.Socket, err)
	}
	return ""
}

func noteEpoch(binary, daemon int64) *epochNote {
	n := &epochNote{Binary: binary, Daemon: daemon, Relation: epoch.Relation(binary, daemon)}
	switch n.Relation {
	case epoch.ClientNewer:
		n.Note = "this kache binary is newer than the running daemon: the daemon hands over to the new binary (or, for another installation, restarts) on the next upload, stats or build request (or run `kache daemon restart` now)"
	case epoch.DaemonNewer:
		n.Note = "the daemon runs a newer kache than this binary; this client keeps using it"
	}
	return n
}

func printStatus(w io.Writer, r *statusReport) {
	fmt.Fprintf(w, "kache %s (epoch %d)\n", r.Binary.Version, r.Binary.Epoch)
	if r.Binary.Build != "" {
		fmt.Fprintf(w, "build:    %s\n", r.Binary.Build)
	}
	for _, f := range r.Binary.Files {
		fmt.Fprintf(w, "binary:   %s (%s)\n", f.Path, describeFileEpoch(f.Epoch))
	}
	fmt.Fprintf(w, "service:  %s\n", describeService(r.Service))
	switch {
	case r.Running:
		d := r.Daemon
		fmt.Fprintf(w, "daemon:   running (pid %d, %s for %s: %s)\n", d.Pid, d.State, since(d.StateSince), d.StateCause)
		fmt.Fprintf(w, "version:  %s (epoch %d), up %s\n", d.Version, d.Epoch, time.Duration(d.UptimeMs)*time.Millisecond)
		if d.Build != "" && d.Build != r.Binary.Build {
			fmt.Fprintf(w, "build:    the daemon runs build %s, not this binary's\n", d.Build)
		}
		if r.Epoch != nil && r.Epoch.Note != "" {
			fmt.Fprintf(w, "epoch:    %s\n", r.Epoch.Note)
		}
		fmt.Fprintf(w, "remote:   %s\n", d.Remote)
		fmt.Fprintf(w, "uploads:  %d queued, %d in flight, %d failed, %d in spool (breaker %s)\n", d.Queue.Queued, d.Queue.InFlight, d.Queue.Failed, d.Queue.Spool, d.Queue.Breaker)
		if d.Queue.Paused != "" {
			fmt.Fprintf(w, "paused:   uploads wait: %s (retried on a schedule; fix it and they resume)\n", d.Queue.Paused)
		}
		fmt.Fprintf(w, "idle:     %s\n", describeIdle(d))
		if d.RestartReason != "" {
			fmt.Fprintf(w, "restart:  %s\n", d.RestartReason)
		}
		if d.Handover != "" {
			fmt.Fprintf(w, "handover: failed: %s\n", d.Handover)
		}
		if d.ConfigError != "" {
			fmt.Fprintf(w, "config:   change refused: %s\n", d.ConfigError)
		}
		if r.ConfigDrift != nil {
			fmt.Fprintf(w, "config:   %s\n", r.ConfigDrift.Note)
		}
	case r.Problem != "":
		fmt.Fprintf(w, "daemon:   not answering: %s\n", r.Problem)
	default:
		fmt.Fprintf(w, "daemon:   stopped (start it with `kache daemon start`)\n")
	}
	fmt.Fprintf(w, "socket:   %s\nlog:      %s\n", r.Socket, r.Log)
	if r.ShortSocket {
		fmt.Fprintf(w, "          (a short stand-in: the socket beside the cache dir would be over the OS limit of %d bytes; set KACHE_SOCKET_PATH to choose another)\n", config.MaxSocketPath())
	}
	if r.LastExit != nil && !r.Running {
		fmt.Fprintf(w, "last exit: %s at %s: %s\n", r.LastExit.Reason, r.LastExit.At.Local().Format(time.DateTime), r.LastExit.Message)
	}
	if r.Autostart != nil && r.Autostart.Note != "" {
		fmt.Fprintf(w, "autostart: %s\n", r.Autostart.Note)
	}
}

func describeService(i service.Info) string {
	if !i.Installed {
		return "not installed"
	}
	return "installed (" + i.Manager + ", " + i.Path + ")"
}

func describeIdle(d *rpc.Status) string {
	switch {
	case d.IdleTimeoutS == 0:
		return "idle exit disabled"
	case d.IdleDeadline == nil:
		return fmt.Sprintf("exits after %ds idle; held off by work in progress", d.IdleTimeoutS)
	}
	return fmt.Sprintf("exits after %ds idle, at %s (in %s)", d.IdleTimeoutS, d.IdleDeadline.Local().Format(time.TimeOnly), time.Until(*d.IdleDeadline).Round(time.Second))
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// describeFileEpoch is a binary's mtime for people, or why there is none.
func describeFileEpoch(e int64) string {
	if e == 0 {
		return "missing: reinstall kache with `make build` or `go install ./cmd/...`"
	}
	return "epoch " + strconv.FormatInt(e, 10) + ", " + time.Unix(0, e).Local().Format(time.DateTime)
}
