package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is a getenv over a map, so tests never see the real environment.
func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaultsWithoutFile(t *testing.T) {
	c, err := Load(env(map[string]string{"KACHE_CONFIG": filepath.Join(t.TempDir(), "none.toml")}))
	if err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout != 600*time.Second || c.DrainTimeout != 30*time.Second || c.S3.Concurrency != 16 || c.S3.Bucket != "" || c.RemoteDir != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadPrecedenceEnvOverFile(t *testing.T) {
	p := writeConfig(t, "daemon_idle_timeout_secs = 5\ndrain_timeout_secs = 7\n[s3]\nbucket = \"fb\"\nconcurrency = 4\n[remote]\ndir = \"/r\"\n")
	c, err := Load(env(map[string]string{"KACHE_CONFIG": p}))
	if err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout != 5*time.Second || c.DrainTimeout != 7*time.Second || c.S3.Bucket != "fb" || c.S3.Concurrency != 4 || c.RemoteDir != "/r" {
		t.Fatalf("file values: %+v", c)
	}
	c, err = Load(env(map[string]string{"KACHE_CONFIG": p, "KACHE_DAEMON_IDLE_TIMEOUT": "0", "KACHE_S3_BUCKET": "eb", "KACHE_S3_CONCURRENCY": "9"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.IdleTimeout != 0 || c.S3.Bucket != "eb" || c.S3.Concurrency != 9 {
		t.Fatalf("env must override the file: %+v", c)
	}
}

func TestLoadBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		vars       map[string]string
		want       string
	}{
		{"string idle", `daemon_idle_timeout_secs = "abc"`, nil, "daemon_idle_timeout_secs"},
		{"negative idle", `daemon_idle_timeout_secs = -5`, nil, "daemon_idle_timeout_secs"},
		{"negative drain", `drain_timeout_secs = -1`, nil, "drain_timeout_secs"},
		{"drain over the cap", `drain_timeout_secs = 301`, nil, "drain_timeout_secs"},
		{"zero concurrency", "[s3]\nconcurrency = 0", nil, "s3.concurrency"},
		{"unknown key", `daemon_idle_timeout = 5`, nil, "daemon_idle_timeout"},
		{"not toml", `daemon_idle_timeout_secs = `, nil, "config.toml"},
		{"env idle", ``, map[string]string{"KACHE_DAEMON_IDLE_TIMEOUT": "10m"}, "KACHE_DAEMON_IDLE_TIMEOUT"},
		{"env concurrency", ``, map[string]string{"KACHE_S3_CONCURRENCY": "1000"}, "KACHE_S3_CONCURRENCY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"KACHE_CONFIG": writeConfig(t, tc.file)}
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := Load(env(vars))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want ErrInvalid naming %q, got %v", tc.want, err)
			}
		})
	}
}

func TestFilePath(t *testing.T) {
	if got := FilePath(env(map[string]string{"KACHE_CONFIG": "/x.toml", "XDG_CONFIG_HOME": "/c"})); got != "/x.toml" {
		t.Fatalf("KACHE_CONFIG first: %s", got)
	}
	if got := FilePath(env(map[string]string{"XDG_CONFIG_HOME": "/c", "HOME": "/h"})); got != "/c/kache/config.toml" {
		t.Fatalf("XDG: %s", got)
	}
	if got := FilePath(env(map[string]string{"HOME": "/h"})); got != "/h/.config/kache/config.toml" {
		t.Fatalf("HOME: %s", got)
	}
}

func TestResolvePaths(t *testing.T) {
	p, err := ResolvePaths(env(map[string]string{"HOME": "/home/u"}))
	if err != nil || p.CacheDir != "/home/u/.cache/kache" || p.Socket != "/home/u/.cache/kache/daemon.sock" {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	if p.LogFile() != "/home/u/.cache/kache/daemon.log" || p.RunLock() != "/home/u/.cache/kache/daemon.run.lock" {
		t.Fatalf("siblings: %s %s", p.LogFile(), p.RunLock())
	}
	p, err = ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": "/c", "KACHE_SOCKET_PATH": "/tmp/k.sock"}))
	if err != nil || p.Socket != "/tmp/k.sock" || p.StateFile() != "/tmp/k.state.json" || p.SpoolDir() != "/c/upload-queue" {
		t.Fatalf("custom: %+v %v", p, err)
	}
}

func TestResolvePathsRejectsBadSockets(t *testing.T) {
	long := "/tmp/" + strings.Repeat("s", MaxSocketPath()) + ".sock"
	for name, sock := range map[string]string{"relative": "k.sock", "too long": long} {
		_, err := ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": "/c", "KACHE_SOCKET_PATH": sock}))
		if !errors.Is(err, ErrSocketPath) || !strings.Contains(err.Error(), "KACHE_SOCKET_PATH") {
			t.Errorf("%s: want ErrSocketPath naming KACHE_SOCKET_PATH, got %v", name, err)
		}
	}
}

// A default socket path over the OS limit (a deep cache dir) falls back to
// a short one in a per-user directory, and says so; two deep cache dirs
// get two sockets. An explicit KACHE_SOCKET_PATH is never replaced.
func TestResolvePathsShortSocketForDeepCacheDir(t *testing.T) {
	deep := "/" + strings.Repeat("d", 120)
	p, err := ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": deep, "XDG_RUNTIME_DIR": "/run/user/1000"}))
	want := fmt.Sprintf("/run/user/1000/kache-%d/", os.Getuid())
	if err != nil || !p.ShortSocket || !strings.HasPrefix(p.Socket, want) || len(p.Socket) > MaxSocketPath() {
		t.Fatalf("deep cache dir: %+v, %v; want a short socket under %s", p, err, want)
	}
	other, _ := ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": deep + "x", "XDG_RUNTIME_DIR": "/run/user/1000"}))
	if other.Socket == p.Socket {
		t.Errorf("two cache dirs share the short socket %s", p.Socket)
	}
	p, err = ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": deep}))
	if err != nil || !strings.HasPrefix(p.Socket, os.TempDir()+fmt.Sprintf("/kache-%d/", os.Getuid())) {
		t.Errorf("without XDG_RUNTIME_DIR: %+v, %v; want the temp dir", p, err)
	}
	if p, _ := ResolvePaths(env(map[string]string{"KACHE_CACHE_DIR": "/c"})); p.ShortSocket {
		t.Errorf("a short default path was replaced: %+v", p)
	}
}

func TestRelativeRemoteDirIsRelativeToTheFile(t *testing.T) {
	p := writeConfig(t, "[remote]\ndir = \"shared\"\n")
	c, err := Load(env(map[string]string{"KACHE_CONFIG": p}))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "shared"); c.RemoteDir != want {
		t.Fatalf("remote dir = %s, want %s", c.RemoteDir, want)
	}
}

// TestDecodeErrorsSayWhereAndWhat: a bad config.toml is named by line,
// key and what was expected, in the file's terms, not the Go field's.
func TestDecodeErrorsSayWhereAndWhat(t *testing.T) {
	cases := []struct{ file, want, not string }{
		{`daemon_idle_timeout_secs = "abc"`, `line 1, column 28: daemon_idle_timeout_secs: a string where a whole number is expected`, "int64"},
		{"[s3]\nbucket = 5", `line 2, column 10: s3.bucket: an integer where a string is expected`, "struct"},
		{"[s3]\nregion = \"x\"\nfoo = 1", `line 3: unknown key "s3.foo"; the keys are`, ""},
		{"drain_timeout_secs = ", `line 1, column`, ""},
	}
	for _, tc := range cases {
		_, err := Load(env(map[string]string{"KACHE_CONFIG": writeConfig(t, tc.file)}))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || (tc.not != "" && strings.Contains(err.Error(), tc.not)) {
			t.Errorf("config %q: got %v, want ErrInvalid saying %q", tc.file, err, tc.want)
		}
	}
}
