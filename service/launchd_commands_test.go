package service

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// darwinOptions is an install for uid 501 into a temp home, exercising the
// launchd path on any OS through Options.OS.
func darwinOptions(t *testing.T, out *bytes.Buffer) Options {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	o := Options{Exe: fakeExe(t, filepath.Join(dir, "bin")), Home: home, UID: 501, OS: "darwin",
		Socket: filepath.Join(home, "Library/Caches/kache/daemon.sock")}
	if out != nil {
		o.Out = out
	}
	return o
}

const (
	printDomain = "launchctl print gui/501"
	printJob    = "launchctl print gui/501/ninja.kunobi.kache"
	bootout     = "launchctl bootout gui/501/ninja.kunobi.kache"
)

func TestLaunchdInstallTwiceThenUninstall(t *testing.T) {
	f := installFakes(t)
	var out bytes.Buffer
	o := darwinOptions(t, &out)
	ctx := context.Background()
	plistFile := filepath.Join(o.Home, "Library/LaunchAgents/ninja.kunobi.kache.plist")
	bootstrap := "launchctl bootstrap gui/501 " + plistFile

	f.rule(printJob, "113", `Could not find service "ninja.kunobi.kache" in domain for user gui: 501`)
	res, err := Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(printDomain, printJob, bootstrap)
	if res.Action != ActionInstalled || res.Manager != ManagerLaunchd {
		t.Errorf("first install: %+v", res)
	}
	want, _ := LaunchdPlist(o)
	assertFile(t, plistFile, string(want))
	if _, err := os.Stat(filepath.Dir(o.Socket)); err != nil {
		t.Errorf("log directory not created: %v", err)
	}

	f.clearRules() // now loaded
	res, err = Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(printDomain, printJob, bootout, bootstrap)
	if res.Action != ActionUpdated || !strings.Contains(out.String(), "updated "+plistFile) {
		t.Errorf("second install: %+v, output %q", res, out.String())
	}

	res, err = Uninstall(ctx, o)
	if err != nil || res.Action != ActionUninstalled {
		t.Fatalf("uninstall: %+v, %v", res, err)
	}
	f.expect(printJob, bootout)
	assertGone(t, plistFile)

	res, err = Uninstall(ctx, o)
	if err != nil || res.Action != ActionNotInstalled {
		t.Fatalf("second uninstall: %+v, %v", res, err)
	}
	f.expect()
}

func TestLaunchdBootoutNotLoadedIsIgnored(t *testing.T) {
	f := installFakes(t)
	o := darwinOptions(t, nil)
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.calls()
	// The job exits between print and bootout.
	f.rule(bootout, "3", "Boot-out failed: 3: No such process")
	if _, err := Uninstall(context.Background(), o); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	f.expect(printJob, bootout)
	assertGone(t, plistPath(o))
}

func TestLaunchdBootstrapFailureIsSurfaced(t *testing.T) {
	f := installFakes(t)
	o := darwinOptions(t, nil)
	f.rule("launchctl bootstrap *", "5", "Bootstrap failed: 5: Input/output error")
	_, err := Install(context.Background(), o)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode() != 5 || !strings.Contains(err.Error(), "Input/output error") {
		t.Fatalf("install error %v, want launchctl's own message and exit code 5", err)
	}
}

func TestLaunchdRefusedWithoutGUISession(t *testing.T) {
	f := installFakes(t)
	o := darwinOptions(t, nil)
	f.rule(printDomain, "112", "Could not find domain for user gui: 501")
	_, err := Install(context.Background(), o)
	if !errors.Is(err, ErrNoManager) || !strings.Contains(err.Error(), "kache daemon start") {
		t.Fatalf("install error %v, want ErrNoManager pointing at kache daemon start", err)
	}
	f.expect(printDomain)
}

func TestLaunchdRestartAndStatus(t *testing.T) {
	f := installFakes(t)
	o := darwinOptions(t, nil)
	if info := Status(o); info.Installed || info.Manager != ManagerLaunchd {
		t.Fatalf("status before install: %+v", info)
	}
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.calls()
	if err := Restart(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.expect("launchctl kickstart -k gui/501/ninja.kunobi.kache")
	info := Status(o)
	if !info.Installed || info.Path != plistPath(o) || info.SocketUnit != "" {
		t.Errorf("status after install: %+v", info)
	}
}
