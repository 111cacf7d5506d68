package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Defaults from the lifecycle document.
const (
	DefaultIdleTimeout  = 600 * time.Second
	DefaultDrainTimeout = 30 * time.Second
	DefaultConcurrency  = 16
)

// maxDrainSecs caps drain_timeout_secs: service managers and `daemon stop`
// wait StopTimeout for an exit, and a drain must not outlast a reboot.
const maxDrainSecs = 300

// StopMargin is how much longer than the drain timeout anyone waiting for
// a daemon's exit waits: workers, downloads and the server close after it.
const StopMargin = 15 * time.Second

// StopTimeout is how long a stop may take: the drain plus StopMargin.
func (c Config) StopTimeout() time.Duration { return c.DrainTimeout + StopMargin }

// ErrInvalid marks a configuration error: a bad value in config.toml or the
// environment. The daemon exits with the config exit code on it, which the
// service files treat as "do not restart".
var ErrInvalid = errors.New("invalid configuration")

// Config is everything the daemon reads from config.toml and the environment.
type Config struct {
	File         string        // the config file consulted (may not exist)
	IdleTimeout  time.Duration // 0 disables idle exit
	DrainTimeout time.Duration
	S3           S3
	RemoteDir    string // [remote] dir: a directory remote
	// StoreCap bounds the local store (bytes); the daemon evicts the
	// least recently used entries past it while idle.
	StoreCap int64
	// KeySalt goes into every Rust entry key: changing it starts a fresh
	// set of entries (the escape hatch if a key input were ever missed).
	KeySalt string
}

// DefaultStoreCap is the local store's cap when none is configured.
const DefaultStoreCap int64 = 10 << 30

// HasRemote reports whether a remote is configured, so the wrappers hand
// entries to the daemon; without one they stay in the local store.
func (c Config) HasRemote() bool { return c.S3.Bucket != "" || c.RemoteDir != "" }

// S3 holds the [s3] table.
type S3 struct {
	Bucket      string
	Prefix      string
	Region      string
	Endpoint    string
	Concurrency int
}

// fileConfig mirrors config.toml. Pointers tell "unset" from zero.
type fileConfig struct {
	IdleTimeoutSecs  *int64 `toml:"daemon_idle_timeout_secs"`
	DrainTimeoutSecs *int64 `toml:"drain_timeout_secs"`
	S3               struct {
		Bucket      string `toml:"bucket"`
		Prefix      string `toml:"prefix"`
		Region      string `toml:"region"`
		Endpoint    string `toml:"endpoint"`
		Concurrency *int64 `toml:"concurrency"`
	} `toml:"s3"`
	Remote struct {
		Dir string `toml:"dir"`
	} `toml:"remote"`
	Cache struct {
		MaxSizeMB *int64 `toml:"max_size_mb"`
		KeySalt   string `toml:"key_salt"`
	} `toml:"cache"`
}

// FilePath is KACHE_CONFIG, else $XDG_CONFIG_HOME/kache/config.toml, else
// ~/.config/kache/config.toml.
func FilePath(getenv func(string) string) string {
	if p := getenv("KACHE_CONFIG"); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "kache", "config.toml")
	}
	return filepath.Join(getenv("HOME"), ".config", "kache", "config.toml")
}

// Load reads the config file (a missing file is fine) and applies the
// environment over it. Every error names the key or the file and wraps
// ErrInvalid.
func Load(getenv func(string) string) (Config, error) {
	c := defaults(FilePath(getenv))
	data, err := readFile(c.File)
	if err != nil {
		return c, err
	}
	if err := c.parse(data); err != nil {
		return c, err
	}
	return c, c.applyEnv(getenv)
}

// defaults is the configuration before the file and the environment.
func defaults(file string) Config {
	return Config{File: file, IdleTimeout: DefaultIdleTimeout,
		DrainTimeout: DefaultDrainTimeout, S3: S3{Concurrency: DefaultConcurrency}, StoreCap: DefaultStoreCap}
}

// parse applies config.toml's bytes over c. The TOML decoder lets some
// invalid UTF-8 through silently (a UTF-16 byte order mark decodes as an
// empty file), so the bytes are checked first.
func (c *Config) parse(data []byte) error {
	if err := checkUTF8(c.File, data); err != nil {
		return err
	}
	if err := checkNesting(c.File, data); err != nil {
		return err
	}
	fc, err := decodeFile(c.File, data)
	if err != nil {
		return err
	}
	return c.applyFile(fc)
}

func (c *Config) applyFile(fc fileConfig) error {
	var err error
	if fc.IdleTimeoutSecs != nil {
		if c.IdleTimeout, err = seconds(c.File+": daemon_idle_timeout_secs", *fc.IdleTimeoutSecs); err != nil {
			return err
		}
	}
	if fc.DrainTimeoutSecs != nil {
		if *fc.DrainTimeoutSecs > maxDrainSecs {
			return fmt.Errorf("%w: %s: drain_timeout_secs = %d is out of range (0 to %d seconds)", ErrInvalid, c.File, *fc.DrainTimeoutSecs, maxDrainSecs)
		}
		if c.DrainTimeout, err = seconds(c.File+": drain_timeout_secs", *fc.DrainTimeoutSecs); err != nil {
			return err
		}
	}
	if fc.S3.Concurrency != nil {
		if c.S3.Concurrency, err = concurrency(c.File+": s3.concurrency", *fc.S3.Concurrency); err != nil {
			return err
		}
	}
	if fc.Cache.MaxSizeMB != nil {
		if c.StoreCap, err = storeCap(c.File+": cache.max_size_mb", *fc.Cache.MaxSizeMB); err != nil {
			return err
		}
	}
	c.KeySalt = fc.Cache.KeySalt
	c.S3.Bucket, c.S3.Prefix, c.S3.Region, c.S3.Endpoint = fc.S3.Bucket, fc.S3.Prefix, fc.S3.Region, fc.S3.Endpoint
	c.RemoteDir = fc.Remote.Dir
	if c.RemoteDir != "" && !filepath.IsAbs(c.RemoteDir) {
		c.RemoteDir = filepath.Join(filepath.Dir(c.File), c.RemoteDir) // relative to the file, not to the daemon's cwd
	}
	return nil
}

func (c *Config) applyEnv(getenv func(string) string) error {
	if v := getenv("KACHE_DAEMON_IDLE_TIMEOUT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: KACHE_DAEMON_IDLE_TIMEOUT=%q is not a whole number of seconds (0 disables idle exit)", ErrInvalid, v)
		}
		if c.IdleTimeout, err = seconds("KACHE_DAEMON_IDLE_TIMEOUT", n); err != nil {
			return err
		}
	}
	if v := getenv("KACHE_S3_CONCURRENCY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: KACHE_S3_CONCURRENCY=%q is not a whole number", ErrInvalid, v)
		}
		if c.S3.Concurrency, err = concurrency("KACHE_S3_CONCURRENCY", n); err != nil {
			return err
		}
	}
	if v := getenv("KACHE_CACHE_MAX_SIZE_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: KACHE_CACHE_MAX_SIZE_MB=%q is not a whole number of MiB", ErrInvalid, v)
		}
		if c.StoreCap, err = storeCap("KACHE_CACHE_MAX_SIZE_MB", n); err != nil {
			return err
		}
	}
	for env, dst := range map[string]*string{"KACHE_KEY_SALT": &c.KeySalt, "KACHE_S3_BUCKET": &c.S3.Bucket, "KACHE_S3_PREFIX": &c.S3.Prefix,
		"KACHE_S3_REGION": &c.S3.Region, "KACHE_S3_ENDPOINT": &c.S3.Endpoint, "KACHE_REMOTE_DIR": &c.RemoteDir} {
		if v := getenv(env); v != "" {
			*dst = v
		}
	}
	return nil
}

func seconds(key string, n int64) (time.Duration, error) {
	const max = 366 * 24 * 3600
	if n < 0 || n > max {
		return 0, fmt.Errorf("%w: %s = %d is out of range (0 to %d seconds)", ErrInvalid, key, n, max)
	}
	return time.Duration(n) * time.Second, nil
}

func concurrency(key string, n int64) (int, error) {
	if n < 1 || n > 256 {
		return 0, fmt.Errorf("%w: %s = %d is out of range (1 to 256)", ErrInvalid, key, n)
	}
	return int(n), nil
}

func storeCap(key string, mb int64) (int64, error) {
	if mb < 1 || mb > 1<<24 {
		return 0, fmt.Errorf("%w: %s = %d is out of range (1 to %d MiB)", ErrInvalid, key, mb, 1<<24)
	}
	return mb << 20, nil
}
