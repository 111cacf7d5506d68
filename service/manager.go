package service

import (
	"context"
	"fmt"
)

// manager is one service manager, chosen once from the OS (managerFor):
// the exported functions delegate to it instead of switching on the OS.
type manager interface {
	name() string
	// status reads the files only: cheap, and safe for a read-only status.
	status(o Options) Info
	available(ctx context.Context, o Options) error
	validate(o Options) error
	install(ctx context.Context, o Options) (*Result, error)
	uninstall(ctx context.Context, o Options) (*Result, error)
	restart(ctx context.Context, o Options) error
}

// managerFor is the one place that maps an OS onto its service manager.
func managerFor(goos string) manager {
	switch goos {
	case "linux":
		return systemd{}
	case "darwin":
		return launchd{}
	}
	return none{}
}

// systemd is the systemd user manager: a .service and a .socket unit.
type systemd struct{}

func (systemd) name() string { return ManagerSystemd }
func (systemd) status(o Options) Info {
	i := Info{Manager: ManagerSystemd, Path: servicePath(o), SocketUnit: socketPath(o)}
	i.Installed = exists(i.Path)
	return i
}
func (systemd) available(ctx context.Context, o Options) error { return systemdAvailable(ctx, o) }
func (systemd) validate(o Options) error                       { return validateSystemd(o) }
func (systemd) install(ctx context.Context, o Options) (*Result, error) {
	return installSystemd(ctx, o)
}
func (systemd) uninstall(ctx context.Context, o Options) (*Result, error) {
	return uninstallSystemd(ctx, o)
}
func (systemd) restart(ctx context.Context, o Options) error {
	_, err := run(ctx, o, "systemctl", "--user", "restart", ServiceUnit)
	return err
}

// launchd is the launchd per-user agent: one plist.
type launchd struct{}

func (launchd) name() string { return ManagerLaunchd }
func (launchd) status(o Options) Info {
	i := Info{Manager: ManagerLaunchd, Path: plistPath(o)}
	i.Installed = exists(i.Path)
	return i
}
func (launchd) available(ctx context.Context, o Options) error { return launchdAvailable(ctx, o) }
func (launchd) validate(Options) error                         { return nil }
func (launchd) install(ctx context.Context, o Options) (*Result, error) {
	return installLaunchd(ctx, o)
}
func (launchd) uninstall(ctx context.Context, o Options) (*Result, error) {
	return uninstallLaunchd(ctx, o)
}
func (launchd) restart(ctx context.Context, o Options) error {
	_, err := run(ctx, o, "launchctl", "kickstart", "-k", launchdTarget(o))
	return err
}

// none is an OS kache has no service support on.
type none struct{}

func (none) name() string                           { return ManagerNone }
func (none) status(Options) Info                    { return Info{Manager: ManagerNone} }
func (none) validate(Options) error                 { return nil }
func (none) restart(context.Context, Options) error { return ErrNotInstalled }
func (none) available(_ context.Context, o Options) error {
	return fmt.Errorf("%w: kache has no service support on %s; run the daemon with `kache daemon start` instead", ErrNoManager, o.OS)
}
func (none) install(ctx context.Context, o Options) (*Result, error) {
	return nil, none{}.available(ctx, o)
}
func (none) uninstall(_ context.Context, o Options) (*Result, error) {
	fmt.Fprintf(o.Out, "kache has no service support on %s; nothing to uninstall\n", o.OS)
	return &Result{Manager: ManagerNone, Action: ActionNotInstalled}, nil
}
