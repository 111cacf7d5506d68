package report

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
)

// StatusReport is `kache daemon status --json`, documented in docs/status.md.
type StatusReport struct {
	Binary  BinaryInfo   `json:"binary"`
	Service service.Info `json:"service"`
	Running bool         `json:"running"`
	Socket  string       `json:"socket"`
	// ShortSocket: <cache>/daemon.sock was over the OS limit, and Socket is
	// a short stand-in in a per-user directory.
	ShortSocket bool                   `json:"socket_short,omitempty"`
	Log         string                 `json:"log"`
	Daemon      *rpc.Status            `json:"daemon,omitempty"`
	Epoch       *EpochNote             `json:"epoch,omitempty"`
	Problem     string                 `json:"problem,omitempty"`
	StateFile   *statefile.StateRecord `json:"state_file,omitempty"`
	LastExit    *statefile.ExitRecord  `json:"last_exit,omitempty"`
	Autostart   *daemonctl.BreakerNote `json:"autostart,omitempty"`
	ConfigDrift *ConfigDrift           `json:"config_drift,omitempty"`
}

// ConfigDrift is set when this shell's effective configuration differs
// from the daemon's: the keys that differ, and what to do.
type ConfigDrift struct {
	Keys []string `json:"keys"`
	Note string   `json:"note"`
}

// BinaryInfo is the kache that asks: its version, and the installation's
// epoch and build.
type BinaryInfo struct {
	Version string `json:"version"`
	Epoch   int64  `json:"epoch"`           // the newer of the two files' mtimes
	Build   string `json:"build,omitempty"` // Go build ID of the kache-daemon beside it: its content identity
	Exe     string `json:"exe"`
	// Files are the installation's two binaries, each with its own epoch:
	// replacing either makes the pair newer.
	Files []BinaryFile `json:"files"`
}

// BinaryFile is one binary of the installation.
type BinaryFile struct {
	Path  string `json:"path"`
	Epoch int64  `json:"epoch"` // 0: missing or unreadable
}

// EpochNote compares this binary with the running daemon.
type EpochNote struct {
	Binary   int64  `json:"binary"`
	Daemon   int64  `json:"daemon"`
	Relation string `json:"relation"`
	Note     string `json:"note,omitempty"`
}

// Status gathers what status shows: the binary (Files are filled here),
// the service, and the daemon as daemonctl.Probe finds it, with the
// configuration getenv sees compared with the daemon's. It only reads.
func Status(ctx context.Context, p config.Paths, bin BinaryInfo, svc service.Options, getenv func(string) string) *StatusReport {
	bin.Files = installFiles(bin.Exe)
	r := &StatusReport{Binary: bin, Socket: p.Socket, Log: p.LogFile(), ShortSocket: p.ShortSocket, Service: service.Status(svc)}
	h := daemonctl.Probe(ctx, p, bin.Epoch, daemonctl.StatusTimeout)
	if st := h.Status; st != nil {
		r.Running, r.Daemon = true, st
		r.Epoch = noteEpoch(bin.Epoch, st.Epoch)
		r.ConfigDrift = noteConfig(getenv, st)
	} else {
		r.Problem = diagnose(p, h)
	}
	r.StateFile, r.LastExit = h.State, h.Exit
	r.Autostart = daemonctl.ReadBreaker(p, bin.Epoch)
	return r
}

// installFiles lists kache and the kache-daemon beside it.
func installFiles(exe string) []BinaryFile {
	files := []BinaryFile{{Path: exe, Epoch: epoch.Of(exe)}}
	d, err := install.DaemonPath(exe)
	if err != nil {
		d = filepath.Join(filepath.Dir(exe), install.DaemonName)
	}
	return append(files, BinaryFile{Path: d, Epoch: epoch.Of(d)})
}

// noteConfig compares the configuration this command sees with the
// daemon's, by their fields (no secrets are in them).
func noteConfig(getenv func(string) string, st *rpc.Status) *ConfigDrift {
	mine, err := config.Load(getenv)
	if err != nil || st.ConfigFields == nil {
		return nil
	}
	keys := config.DiffFields(mine.Fields(), st.ConfigFields)
	if len(keys) == 0 {
		return nil
	}
	return &ConfigDrift{Keys: keys, Note: "the daemon runs another configuration (" + strings.Join(keys, ", ") +
		"): it hands over by itself when config.toml changes; a difference in this shell's KACHE_* variables it cannot see: run `kache daemon restart` from this shell to apply them"}
}

// diagnose explains why the daemon did not answer; "" means plainly not
// running (no lock holder, no socket).
func diagnose(p config.Paths, h daemonctl.Report) string {
	switch h.Health {
	case daemonctl.SocketGone:
		return "a process holds the run lock " + p.RunLock() + " but the socket does not accept connections (socket file deleted?): run `kache daemon restart`"
	case daemonctl.Wedged:
		return fmt.Sprintf("the daemon holds the run lock but did not answer within %s (%v): it may be stopped or wedged; run `kache daemon restart`", daemonctl.StatusTimeout, h.Err)
	case daemonctl.Foreign:
		return fmt.Sprintf("something answers on %s but not as a kache daemon (%v)", p.Socket, h.Err)
	}
	return ""
}

func noteEpoch(binary, daemon int64) *EpochNote {
	n := &EpochNote{Binary: binary, Daemon: daemon, Relation: epoch.Relation(binary, daemon)}
	switch n.Relation {
	case epoch.ClientNewer:
		n.Note = "this kache binary is newer than the running daemon: the daemon hands over to the new binary (or, for another installation, restarts) on the next upload, stats or build request (or run `kache daemon restart` now)"
	case epoch.DaemonNewer:
		n.Note = "the daemon runs a newer kache than this binary; this client keeps using it"
	}
	return n
}
