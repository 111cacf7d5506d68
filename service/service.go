// Package service installs kache as a per-user service: a systemd user unit
// with a socket unit on Linux, a launchd agent on macOS. It exists so that
// the service manager, not kache, restarts the daemon after a binary update:
// the daemon exits with ExitEpochStale and the generated files tell the
// manager to start the new binary on that code and on crashes, but not after
// a clean exit or a configuration error.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Exit codes of `kache daemon run`. cmd/kache/main.go maps the daemon's
// outcomes to these same numbers; the unit file and the plist act on them.
const (
	// ExitClean: stop, idle exit, signal, "already running". Never restarted.
	ExitClean = 0
	// ExitCrash: anything unexpected. Restarted, throttled.
	ExitCrash = 1
	// ExitEpochStale (EX_TEMPFAIL): a newer kache binary is installed. Always
	// restarted, so the new binary takes over.
	ExitEpochStale = 75
	// ExitConfig (EX_CONFIG): bad configuration. Not restarted by systemd;
	// launchd cannot exclude one code, so there ThrottleInterval bounds it.
	ExitConfig = 78
)

// Exit codes of the kache client, beside the daemon's (docs/exit-codes.md);
// cmd/kache/main.go alone maps errors onto them. ExitCrash (1) is also the
// client's code for anything else.
const (
	ExitUsage        = 2 // bad flags or arguments
	ExitNotRunning   = 3 // status found no daemon, or none could be started
	ExitFlushFailed  = 4 // flush: an entry failed permanently
	ExitFlushTimeout = 5 // flush: the timeout passed with uploads pending
)

// Names the service managers know kache by.
const (
	Label       = "ninja.kunobi.kache" // launchd label
	ServiceUnit = "kache.service"
	SocketUnit  = "kache.socket"
)

// Managers reported by Status.
const (
	ManagerSystemd = "systemd"
	ManagerLaunchd = "launchd"
	ManagerNone    = "none"
)

// ErrNoManager marks a machine where no usable service manager runs; the
// caller should fall back to `kache daemon start`.
var ErrNoManager = errors.New("no service manager")

// ErrNotInstalled is returned by Restart when kache is not installed as a
// service, so `kache daemon restart` moves on to its next tier.
var ErrNotInstalled = errors.New("kache is not installed as a service")

// Options says what to install and where. The caller fills Exe, Env,
// Socket and UID; the rest have defaults.
type Options struct {
	Exe    string            // absolute path of the kache binary
	Env    map[string]string // KACHE_SOCKET_PATH, KACHE_CACHE_DIR, KACHE_CONFIG if set
	Socket string            // resolved socket path, for the .socket unit and the log path
	Home   string            // default: os.UserHomeDir
	UID    int               // the caller sets os.Getuid(); 0 is a valid uid
	OS     string            // default: runtime.GOOS; a seam for tests
	// Run runs a command and returns its combined output. The default looks
	// the command up on PATH, which is how tests put a stand-in in place.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	Out io.Writer // messages for the user; default: discarded
	// StopTimeout is how long the manager waits for the daemon to exit
	// before it kills it: the drain timeout plus a margin; default 45 s.
	StopTimeout time.Duration
}

// Info is what Status reports: read from the files, never from a command.
type Info struct {
	Manager    string `json:"manager"` // "systemd", "launchd" or "none"
	Installed  bool   `json:"installed"`
	Path       string `json:"path"`        // the unit or plist path
	SocketUnit string `json:"socket_unit"` // the socket unit path (systemd only)
}

// Action says what Install or Uninstall did.
type Action string

// Actions.
const (
	ActionInstalled    Action = "installed"
	ActionUpdated      Action = "updated"
	ActionUninstalled  Action = "uninstalled"
	ActionNotInstalled Action = "not-installed"
)

// Result reports what Install or Uninstall did.
type Result struct {
	Manager string
	Action  Action
	Files   []string // the files written or removed
}

// withDefaults fills the optional fields.
// defaultStopTimeout outlasts the default 30 s drain.
const defaultStopTimeout = 45 * time.Second

func (o Options) withDefaults() (Options, error) {
	if o.OS == "" {
		o.OS = runtime.GOOS
	}
	if o.Run == nil {
		o.Run = execRun
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = defaultStopTimeout
	}
	if o.Home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return o, fmt.Errorf("find home directory: %w (set $HOME)", err)
		}
		o.Home = h
	}
	if !filepath.IsAbs(o.Home) {
		return o, fmt.Errorf("home directory %q is not absolute; set $HOME to an absolute path", o.Home)
	}
	return o, nil
}

// execRun is the default Options.Run.
func execRun(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Status reports whether kache is installed as a service. It only looks at
// files, so it is cheap and safe for a read-only `kache daemon status`.
func Status(o Options) Info {
	o, err := o.withDefaults()
	m := managerFor(o.OS)
	if err != nil {
		return Info{Manager: m.name()}
	}
	return m.status(o)
}

// Available returns nil if a service manager is usable here, else an error
// wrapping ErrNoManager that says what to do instead.
func Available(o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	return managerFor(o.OS).available(context.Background(), o)
}

// Install writes the service files and loads them. It is safe to repeat: a
// second run rewrites the files and restarts the service on them.
func Install(ctx context.Context, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	m := managerFor(o.OS)
	if err := m.available(ctx, o); err != nil {
		return nil, err
	}
	if err := validate(o); err != nil {
		return nil, err
	}
	return m.install(ctx, o)
}

// Uninstall unloads the service and removes its files. Not installed is
// not an error: it says so and returns ActionNotInstalled.
func Uninstall(ctx context.Context, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return managerFor(o.OS).uninstall(ctx, o)
}

// Restart is tier 1 of `kache daemon restart`: ask the service manager to
// restart the installed daemon. It returns ErrNotInstalled when there is no
// service, so the caller falls through to its next tier.
func Restart(ctx context.Context, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	if !Status(o).Installed {
		return ErrNotInstalled
	}
	return managerFor(o.OS).restart(ctx, o)
}

// exists reports whether path names an existing file.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// stopTimeout is o.StopTimeout, or the default for generators called
// without withDefaults.
func stopTimeout(o Options) time.Duration {
	if o.StopTimeout > 0 {
		return o.StopTimeout
	}
	return defaultStopTimeout
}
