package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kunobi-ninja/kache/config"
)

// launchdThrottle spaces launchd's restarts; ExitTimeOut (SIGTERM to
// SIGKILL) is Options.StopTimeout, which outlasts the drain.
const launchdThrottle = 5

// job returns the launchd agent for o, key for key as launchd.plist(5)
// names them. KeepAlive's SuccessfulExit false restarts the job only after
// a non-zero exit or a signal: the epoch exit (75) and crashes, not a clean
// stop or idle exit (0). launchd cannot single out 78, so a configuration
// error is restarted too, no faster than ThrottleInterval allows.
func job(o Options) plistDict {
	d := plistDict{
		"Label":             Label,
		"ProgramArguments":  []string{o.Exe, "daemon", "run"},
		"RunAtLoad":         true,
		"KeepAlive":         plistDict{"SuccessfulExit": false},
		"ExitTimeOut":       int(stopTimeout(o).Seconds()),
		"ThrottleInterval":  launchdThrottle,
		"ProcessType":       "Background",
		"StandardErrorPath": logPath(o),
	}
	if len(o.Env) > 0 {
		d["EnvironmentVariables"] = o.Env
	}
	return d
}

// LaunchdPlist renders the agent as an XML property list. It is pure.
func LaunchdPlist(o Options) ([]byte, error) {
	return marshalPlist(job(o)), nil
}

// logPath is the daemon log beside the socket, where launchd sends stderr
// so that a crash's last words land where `kache daemon log` looks.
func logPath(o Options) string { return config.Paths{Socket: o.Socket}.LogFile() }

func plistPath(o Options) string {
	return filepath.Join(o.Home, "Library", "LaunchAgents", Label+".plist")
}

func launchdDomain(o Options) string { return fmt.Sprintf("gui/%d", o.UID) }
func launchdTarget(o Options) string { return launchdDomain(o) + "/" + Label }

// launchdAvailable checks that the user's GUI domain exists: bootstrap into
// gui/<uid> fails without a login session (over plain ssh, for one).
func launchdAvailable(ctx context.Context, o Options) error {
	if _, err := probe(ctx, o, "launchctl", "print", launchdDomain(o)); err != nil {
		return fmt.Errorf("%w: no launchd GUI session for uid %d (%v); log in on the desktop, or run the daemon with `kache daemon start` instead", ErrNoManager, o.UID, err)
	}
	return nil
}

// installLaunchd writes the plist and (re)loads it: a loaded job is booted
// out first, since bootstrap refuses a job that is already loaded.
func installLaunchd(ctx context.Context, o Options) (*Result, error) {
	data, err := LaunchdPlist(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(logPath(o)), 0o700); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	existed, err := writeAtomic(plistPath(o), data, 0o644)
	if err != nil {
		return nil, err
	}
	res := &Result{Manager: ManagerLaunchd, Action: ActionInstalled, Files: []string{plistPath(o)}}
	if existed {
		res.Action = ActionUpdated
	}
	if err := launchdUnload(ctx, o); err != nil {
		return res, err
	}
	if _, err := run(ctx, o, "launchctl", "bootstrap", launchdDomain(o), plistPath(o)); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "%s %s and loaded it into %s\n", res.Action, plistPath(o), launchdDomain(o))
	return res, nil
}

// launchdUnload boots the job out if it is loaded. Not loaded is fine.
func launchdUnload(ctx context.Context, o Options) error {
	if _, err := probe(ctx, o, "launchctl", "print", launchdTarget(o)); err != nil {
		return nil // not loaded
	}
	if _, err := run(ctx, o, "launchctl", "bootout", launchdTarget(o)); err != nil && !notLoaded(err) {
		return err
	}
	return nil
}

// notLoaded recognises launchctl's answers for a job that is not loaded:
// 3 (ESRCH, "No such process") from bootout, 113 ("Could not find
// service") from print.
func notLoaded(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.ExitCode() == 3 || ce.ExitCode() == 113 ||
		strings.Contains(ce.Output, "No such process") || strings.Contains(ce.Output, "Could not find")
}

// uninstallLaunchd boots the job out and removes the plist.
func uninstallLaunchd(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Manager: ManagerLaunchd, Action: ActionNotInstalled}
	if !exists(plistPath(o)) {
		fmt.Fprintf(o.Out, "kache is not installed as a launchd agent (no %s); nothing to do\n", plistPath(o))
		return res, nil
	}
	if err := launchdUnload(ctx, o); err != nil {
		return res, err
	}
	removed, err := removeFiles(plistPath(o))
	res.Files = removed
	if err != nil {
		return res, err
	}
	res.Action = ActionUninstalled
	fmt.Fprintf(o.Out, "uninstalled %s\n", plistPath(o))
	return res, nil
}
