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

// linuxOptions is an install for uid 1000 into a temp home.
func linuxOptions(t *testing.T, out *bytes.Buffer) Options {
	t.Helper()
	dir := t.TempDir()
	o := Options{Exe: fakeExe(t, filepath.Join(dir, "bin")), Home: filepath.Join(dir, "home"),
		Socket: filepath.Join(dir, "cache", "daemon.sock"), UID: 1000, OS: "linux",
		Env: map[string]string{"KACHE_CACHE_DIR": filepath.Join(dir, "cache")}}
	if out != nil {
		o.Out = out
	}
	return o
}

const (
	showEnv = "systemctl --user show-environment"
	reload  = "systemctl --user daemon-reload"
	linger  = "loginctl show-user 1000 --property=Linger --value"
)

func TestSystemdInstallTwiceThenUninstall(t *testing.T) {
	f := installFakes(t)
	var out bytes.Buffer
	o := linuxOptions(t, &out)
	ctx := context.Background()

	res, err := Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(showEnv, reload, "systemctl --user enable --now kache.socket kache.service", linger)
	if res.Action != ActionInstalled || res.Manager != ManagerSystemd {
		t.Errorf("first install: %+v", res)
	}
	wantSvc, wantSock := SystemdUnits(o)
	assertFile(t, filepath.Join(o.Home, ".config/systemd/user/kache.service"), wantSvc)
	assertFile(t, filepath.Join(o.Home, ".config/systemd/user/kache.socket"), wantSock)
	if !strings.Contains(out.String(), "loginctl enable-linger") {
		t.Errorf("no linger note in %q", out.String())
	}

	res, err = Install(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(showEnv, reload, "systemctl --user enable kache.socket kache.service",
		"systemctl --user restart kache.service", linger)
	if res.Action != ActionUpdated || !strings.Contains(out.String(), "updated kache.service") {
		t.Errorf("second install: %+v, output %q", res, out.String())
	}

	res, err = Uninstall(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(showEnv, "systemctl --user disable --now kache.service kache.socket", reload)
	if res.Action != ActionUninstalled || Status(o).Installed {
		t.Errorf("uninstall: %+v, status %+v", res, Status(o))
	}
	assertGone(t, filepath.Join(o.Home, ".config/systemd/user/kache.socket"))

	res, err = Uninstall(ctx, o)
	if err != nil || res.Action != ActionNotInstalled {
		t.Fatalf("uninstall when not installed: %+v, %v", res, err)
	}
	f.expect() // nothing to run
	if !strings.Contains(out.String(), "not installed") {
		t.Errorf("output %q does not say it was not installed", out.String())
	}
}

func TestSystemdReinstallNewSocketRestartsSocket(t *testing.T) {
	f := installFakes(t)
	o := linuxOptions(t, nil)
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.calls()
	f.rule("loginctl *", "0", "yes")
	o.Socket = filepath.Join(filepath.Dir(o.Socket), "other.sock")
	var out bytes.Buffer
	o.Out = &out
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.expect(showEnv, reload, "systemctl --user enable kache.socket kache.service",
		"systemctl --user restart kache.socket kache.service", linger)
	if strings.Contains(out.String(), "enable-linger") {
		t.Errorf("linger note printed although lingering is on: %q", out.String())
	}
}

func TestSystemdRestart(t *testing.T) {
	f := installFakes(t)
	o := linuxOptions(t, nil)
	if err := Restart(context.Background(), o); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("restart before install: %v, want ErrNotInstalled", err)
	}
	f.expect()
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.calls()
	if err := Restart(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f.expect("systemctl --user restart kache.service")
}

func TestSystemctlFailureIsSurfaced(t *testing.T) {
	f := installFakes(t)
	o := linuxOptions(t, nil)
	f.rule("systemctl --user enable *", "1", "Failed to enable unit: Unit kache.socket has a bad unit file setting.")
	_, err := Install(context.Background(), o)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode() != 1 {
		t.Fatalf("install error %v, want a CommandError with exit code 1", err)
	}
	for _, want := range []string{"systemctl --user enable --now kache.socket kache.service", "bad unit file setting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	f.expect(showEnv, reload, "systemctl --user enable --now kache.socket kache.service")
}

func TestInstallRefusedWithoutUserManager(t *testing.T) {
	f := installFakes(t)
	o := linuxOptions(t, nil)
	f.rule(showEnv, "1", "Failed to connect to bus: No medium found")
	_, err := Install(context.Background(), o)
	if !errors.Is(err, ErrNoManager) {
		t.Fatalf("install error %v, want ErrNoManager", err)
	}
	for _, want := range []string{"no systemd user manager is running here", "No medium found", "kache daemon start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	f.expect(showEnv)
	if Status(o).Installed {
		t.Error("files written although install was refused")
	}
}

func TestAvailableWithoutSystemctl(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Available(Options{OS: "linux", Home: t.TempDir()})
	if !errors.Is(err, ErrNoManager) || !strings.Contains(err.Error(), "systemctl is not on PATH") {
		t.Fatalf("Available = %v, want ErrNoManager saying systemctl is not on PATH", err)
	}
}

func TestUninstallWithoutUserManagerRemovesFiles(t *testing.T) {
	f := installFakes(t)
	o := linuxOptions(t, nil)
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(o.Home, ".config/systemd/user/default.target.wants/kache.service")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../kache.service", link); err != nil {
		t.Fatal(err)
	}
	f.calls()
	f.rule(showEnv, "1", "Failed to connect to bus: No such file or directory")
	res, err := Uninstall(context.Background(), o)
	if err != nil || res.Action != ActionUninstalled || len(res.Files) != 3 {
		t.Fatalf("uninstall: %+v, %v", res, err)
	}
	f.expect(showEnv)
	assertGone(t, link)
}

func TestInstallRefusesBadOptions(t *testing.T) {
	installFakes(t)
	dir := t.TempDir()
	quoted := fakeExe(t, filepath.Join(dir, `it's`))
	plain := fakeExe(t, filepath.Join(dir, "bin"))
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"relative exe", func(o *Options) { o.Exe = "kache" }, "not absolute"},
		{"missing exe", func(o *Options) { o.Exe = filepath.Join(dir, "nope") }, "no such file"},
		{"not executable", func(o *Options) { o.Exe = noexec }, "not an executable file"},
		{"quote in exe", func(o *Options) { o.Exe = quoted }, "quotes or backslashes"},
		{"relative socket", func(o *Options) { o.Socket = "daemon.sock" }, "KACHE_SOCKET_PATH"},
		{"newline in socket", func(o *Options) { o.Socket = "/tmp/a\nb.sock" }, "KACHE_SOCKET_PATH"},
		{"newline in env", func(o *Options) { o.Env = map[string]string{"KACHE_CONFIG": "a\nb"} }, "control character"},
		{"bad env name", func(o *Options) { o.Env = map[string]string{"A B": "x"} }, "not valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Exe: plain, Home: filepath.Join(dir, "home"), Socket: "/tmp/k.sock", OS: "linux"}
			c.edit(&o)
			_, err := Install(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Install = %v, want an error containing %q", err, c.want)
			}
			if Status(o).Installed {
				t.Error("unit written despite the error")
			}
		})
	}
}

func TestNoServiceSupportElsewhere(t *testing.T) {
	o := Options{OS: "freebsd", Home: t.TempDir()}
	if _, err := Install(context.Background(), o); !errors.Is(err, ErrNoManager) || !strings.Contains(err.Error(), "kache daemon start") {
		t.Fatalf("Install on freebsd = %v, want ErrNoManager pointing at kache daemon start", err)
	}
	if info := Status(o); info.Manager != ManagerNone || info.Installed {
		t.Errorf("Status on freebsd = %+v", info)
	}
}

func assertFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, want)
	}
}

func assertGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", path, err)
	}
}
