package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/report"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
)

// ErrNotAnswering: a daemon holds the run lock or left a state file but
// does not answer (exit 1, as LSB's "dead but pid file exists").
var ErrNotAnswering = errors.New("daemon not answering")

// statusTimeout bounds status: a stopped (SIGSTOP) daemon accepts
// connections but never answers, and status must still return.
const statusTimeout = daemonctl.StatusTimeout

// runStatus only reads: it never starts, stops or restarts anything.
func runStatus(ctx context.Context, env *Env, asJSON bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	r := report.Status(ctx, p, report.BinaryInfo{Version: env.Version, Epoch: env.epoch(), Build: env.build(), Exe: env.Exe}, serviceOptions(env, p), env.Getenv)
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
			fmt.Fprintln(env.Stderr, strings.TrimPrefix(daemonctl.LogHint(p), "\n"))
		}
		return quiet(ErrNotAnswering)
	}
	return quiet(ErrNotRunning)
}

func printStatus(w io.Writer, r *report.StatusReport) {
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
		if len(d.Queue.WaitingForBuild) > 0 {
			fmt.Fprintf(w, "holding:  uploads wait for the running build to end (pid %v), so they take no CPU from it\n", d.Queue.WaitingForBuild)
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
