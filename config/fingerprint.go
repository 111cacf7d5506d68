package config

import (
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Fields is the effective configuration as key=value pairs, named as in
// config.toml: what the file and the KACHE_* variables made of it. It holds
// no secret (S3 credentials come from the AWS chain, never from here), so
// it can be shown and compared.
func (c Config) Fields() map[string]string {
	return map[string]string{
		"daemon_idle_timeout_secs": strconv.FormatInt(int64(c.IdleTimeout.Seconds()), 10),
		"drain_timeout_secs":       strconv.FormatInt(int64(c.DrainTimeout.Seconds()), 10),
		"s3.bucket":                c.S3.Bucket,
		"s3.prefix":                c.S3.Prefix,
		"s3.region":                c.S3.Region,
		"s3.endpoint":              c.S3.Endpoint,
		"s3.concurrency":           strconv.Itoa(c.S3.Concurrency),
		"remote.dir":               c.RemoteDir,
		"cache.max_size_mb":        strconv.FormatInt(c.StoreCap>>20, 10),
	}
}

// Fingerprint is a short hash of Fields: equal configurations, however
// they were written, have equal fingerprints.
func (c Config) Fingerprint() string {
	f := c.Fields()
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + f[k] + "\n")
	}
	h := fnv.New128a()
	h.Write([]byte(b.String()))
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:6])
}

// DiffFields lists the keys whose values differ between a and b, sorted.
func DiffFields(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// inputVars are the environment variables that shape the configuration.
var inputVars = []string{"KACHE_DAEMON_IDLE_TIMEOUT", "KACHE_S3_BUCKET", "KACHE_S3_PREFIX", "KACHE_S3_REGION",
	"KACHE_S3_ENDPOINT", "KACHE_S3_CONCURRENCY", "KACHE_REMOTE_DIR"}

// InputFingerprint hashes what the configuration is made of, without
// parsing it: the config file's bytes (its path and content; a missing
// file is empty) and the variables in inputVars, a relative
// KACHE_REMOTE_DIR made absolute as a spawned daemon sees it. It costs one
// small read and a hash, so every client call can compare it with the
// daemon's; only when they differ does a client parse its own
// configuration to name the keys (see Fields). No secret goes in: S3
// credentials come from the AWS chain, never from here.
func InputFingerprint(getenv func(string) string) string {
	h := fnv.New128a() // not a secret: a change detector, and crypto/sha256 costs the client its start-up
	path := FilePath(getenv)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	h.Write([]byte(path + "\x00"))
	if data, err := readSmall(path); err == nil {
		h.Write(data)
	}
	for _, k := range inputVars {
		v := getenv(k)
		if k == "KACHE_REMOTE_DIR" && v != "" {
			if abs, err := filepath.Abs(v); err == nil {
				v = abs
			}
		}
		h.Write([]byte("\x00" + k + "=" + v))
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// readSmall reads a regular file of at most MaxFileSize bytes, without
// blocking on a FIFO.
func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, MaxFileSize))
}
