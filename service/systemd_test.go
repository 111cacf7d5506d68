package service

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goldenOptions are fixed options for the golden files.
func goldenOptions(goos string) Options {
	if goos == "darwin" {
		return Options{Exe: "/Users/dev/.cargo/bin/kache", Home: "/Users/dev", UID: 501, OS: goos,
			Socket: "/Users/dev/Library/Caches/kache/daemon.sock",
			Env:    map[string]string{"KACHE_CONFIG": "/Users/dev/kache.toml"}}
	}
	return Options{Exe: "/home/dev/.local/bin/kache", Home: "/home/dev", UID: 1000, OS: goos,
		Socket: "/home/dev/.cache/kache/daemon.sock",
		Env: map[string]string{"KACHE_CACHE_DIR": "/home/dev/.cache/kache",
			"KACHE_SOCKET_PATH": "/home/dev/.cache/kache/daemon.sock"}}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./service -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./service -update to accept):\n%s", path, got)
	}
}

func TestSystemdUnitsGolden(t *testing.T) {
	svc, sock := SystemdUnits(goldenOptions("linux"))
	golden(t, "kache.service", []byte(svc))
	golden(t, "kache.socket", []byte(sock))
}

// systemdAnalyze finds systemd-analyze. CI must have it; a developer
// machine without it skips, saying how to get it.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return p
	}
	const how = "systemd-analyze is missing: apt-get install -y systemd"
	if os.Getenv("CI") == "true" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// verify runs `systemd-analyze verify` on the units in dir and returns its
// stderr. It verifies as the user manager would (--user, with a private
// runtime dir and home, so the real user's units stay out of it) and falls
// back to the system manager where a user manager cannot be set up.
func verify(t *testing.T, dir string, units ...string) (string, error) {
	t.Helper()
	sa := systemdAnalyze(t)
	home, runtime := t.TempDir(), t.TempDir()
	if err := os.Chmod(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, u := range units {
		paths = append(paths, filepath.Join(dir, u))
	}
	run := func(mode ...string) (string, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(sa, append(append([]string{"verify"}, mode...), paths...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "HOME="+home,
			"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "SYSTEMD_LOG_LEVEL=notice")
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		err := cmd.Run()
		return stderr.String(), err
	}
	out, err := run("--user")
	if strings.Contains(out, "Failed to initialize manager") {
		t.Logf("systemd-analyze --user: %s; verifying as the system manager", strings.TrimSpace(out))
		out, err = run()
	}
	return out, err
}

// writeUnits writes the units for o into a new temp dir.
func writeUnits(t *testing.T, o Options) string {
	t.Helper()
	dir := t.TempDir()
	svc, sock := SystemdUnits(o)
	for name, text := range map[string]string{ServiceUnit: svc, SocketUnit: sock} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ourLines are the lines of systemd-analyze's output about our units.
func ourLines(out, dir string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, dir) || strings.Contains(l, "kache") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(t.TempDir(), "bin dir 100% $x", "kache")
	if err := os.MkdirAll(filepath.Dir(odd), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]Options{
		"plain": {Exe: self, Socket: "/run/user/1000/kache/daemon.sock"},
		"odd paths and values": {Exe: odd, Socket: "/tmp/kache 100%/daemon.sock",
			Env: map[string]string{"KACHE_CACHE_DIR": `/tmp/odd dir/100% "kache" \ $HOME`,
				"KACHE_CONFIG": "/tmp/a'b/config.toml", "KACHE_SOCKET_PATH": "/tmp/kache 100%/daemon.sock"}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			o.OS, o.Home = "linux", t.TempDir()
			if err := validate(o); err != nil {
				t.Fatalf("validate: %v", err)
			}
			dir := writeUnits(t, o)
			out, err := verify(t, dir, ServiceUnit, SocketUnit)
			if err != nil || len(ourLines(out, dir)) > 0 {
				t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
			}
			if out != "" {
				t.Logf("systemd-analyze said, about other units:\n%s", out)
			}
		})
	}
}

// TestSystemdAnalyzeCatchesMistakes shows the check above can fail: a bad
// setting and a missing binary both produce warnings.
func TestSystemdAnalyzeCatchesMistakes(t *testing.T) {
	o := Options{Exe: filepath.Join(t.TempDir(), "missing-kache"), Socket: "/tmp/k.sock", OS: "linux"}
	dir := writeUnits(t, o)
	svc, _ := SystemdUnits(o)
	bad := strings.Replace(svc, "Type=notify", "Type=notifyy", 1)
	if err := os.WriteFile(filepath.Join(dir, ServiceUnit), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := verify(t, dir, ServiceUnit, SocketUnit)
	for _, want := range []string{"notifyy", "missing-kache"} {
		if !strings.Contains(out, want) {
			t.Errorf("systemd-analyze did not report %q:\n%s", want, out)
		}
	}
}
