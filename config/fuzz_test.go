package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to the config.toml parser. It must not
// panic or hang, every error must wrap ErrInvalid and name the file, and
// every accepted config must be within the documented ranges.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"daemon_idle_timeout_secs = 5\ndrain_timeout_secs = 7\n[s3]\nbucket = \"b\"\nconcurrency = 4\n[remote]\ndir = \"shared\"\n",
		"s3 = {bucket = \"b\", region = \"eu\"}\n",
		"daemon_idle_timeout_secs = 9223372036854775807\n",
		"drain_timeout_secs = -1\n[s3]\nconcurrency = 0\n",
		"\xff\xfe\n",
		"a = [[[[{b={}}]]]]\n",
		"prefix = \"\"\"\n[[[\n\"\"\"\n# {{{\n",
	} {
		f.Add([]byte(seed))
	}
	const file = "/fuzz/kache/config.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaults(file)
		err := c.parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), file) {
				t.Fatalf("error %q does not wrap ErrInvalid and name the file", err)
			}
			return
		}
		checkRanges(t, c)
		if c.RemoteDir != "" && !filepath.IsAbs(c.RemoteDir) {
			t.Fatalf("remote dir %q from the file is not made absolute", c.RemoteDir)
		}
	})
}

// checkRanges asserts the bounds Load promises for an accepted config.
func checkRanges(t *testing.T, c Config) {
	t.Helper()
	if c.IdleTimeout < 0 || c.IdleTimeout > 366*24*time.Hour {
		t.Fatalf("idle timeout %s out of range", c.IdleTimeout)
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > maxDrainSecs*time.Second {
		t.Fatalf("drain timeout %s out of range", c.DrainTimeout)
	}
	if c.S3.Concurrency < 1 || c.S3.Concurrency > 256 {
		t.Fatalf("concurrency %d out of range", c.S3.Concurrency)
	}
}

// FuzzEnv drives Load and ResolvePaths with fuzzed environment values
// through an injected getenv. Errors must wrap ErrInvalid (Load) or
// ErrSocketPath (a bad socket path); accepted values must be in range, set
// strings must be taken as they are, and paths must come out absolute.
func FuzzEnv(f *testing.F) {
	f.Add("600", "16", "bucket", "eu-west-1", "/srv/cache", "/tmp/k.sock", "/home/u/.cache/kache")
	f.Add("0", "256", "", "", "rel/dir", "k.sock", "")
	f.Add("-1", "0", "b", "r", "", "/"+strings.Repeat("s", 200), "rel")
	f.Add("99999999999999999999", "1e3", "\x00", "\xff", "\n", "/tmp/../x.sock", "/c")
	missing := filepath.Join(f.TempDir(), "absent.toml")
	f.Fuzz(func(t *testing.T, idle, conc, bucket, region, remote, socket, cache string) {
		vars := map[string]string{"KACHE_CONFIG": missing, "HOME": "/home/fuzz",
			"KACHE_DAEMON_IDLE_TIMEOUT": idle, "KACHE_S3_CONCURRENCY": conc, "KACHE_S3_BUCKET": bucket,
			"KACHE_S3_REGION": region, "KACHE_REMOTE_DIR": remote, "KACHE_SOCKET_PATH": socket, "KACHE_CACHE_DIR": cache}
		getenv := func(k string) string { return vars[k] }
		c, err := Load(getenv)
		switch {
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Fatalf("Load error %q does not wrap ErrInvalid", err)
		case err == nil:
			checkRanges(t, c)
			if (bucket != "" && c.S3.Bucket != bucket) || (region != "" && c.S3.Region != region) || (remote != "" && c.RemoteDir != remote) {
				t.Fatalf("env strings not taken as set: %+v, remote %q", c.S3, c.RemoteDir)
			}
		}
		p, err := ResolvePaths(getenv)
		if err != nil {
			return // errors are free-form here (no cache dir); they only must not panic
		}
		if !filepath.IsAbs(p.Socket) || !filepath.IsAbs(p.CacheDir) || len(p.Socket) > MaxSocketPath() {
			t.Fatalf("resolved paths %+v are not absolute or too long", p)
		}
	})
}
