package config

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
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
	sum := sha256.Sum256([]byte(b.String()))
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
