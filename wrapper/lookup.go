package wrapper

import (
	"context"
	"io"
	"path/filepath"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

// remoteManifestKey is the store and remote key of a shape's manifest as
// first uploaded, so a fresh cache dir learns the sources of a shape from
// the remote without starting rustc.
func remoteManifestKey(shape string) string { return "rustm-" + shape[:56] }

// lookup tries the shape's variants against the local store, then, with
// a daemon, against the remote; a hit is restored and replayed.
func (c *call) lookup(ctx context.Context) (int, bool) {
	keys := c.candidates(readManifest(manifestPath(c.manifestDir(), c.shape.Hash)))
	for _, k := range keys {
		if code, ok := c.tryLocal(k, buildlog.LocalHit); ok {
			return code, true
		}
	}
	if c.o.Daemon == nil {
		return 0, false
	}
	if len(keys) == 0 {
		keys = c.remoteCandidates(ctx)
	}
	for _, k := range keys {
		found, err := c.o.Daemon.RemoteCheck(ctx, k, c.o.CheckDeadline)
		if err != nil {
			c.rec.Reason = "remote check: " + err.Error()
			return 0, false // offline or failing: compile at once
		}
		if found {
			if code, ok := c.tryLocal(k, buildlog.RemoteHit); ok {
				return code, true
			}
		}
	}
	return 0, false
}

// candidates are the keys the variants give for the files as they are now.
func (c *call) candidates(m Manifest) []string {
	var keys []string
	for _, v := range m.Variants {
		if k, _, err := c.current(v); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// remoteCandidates fetches the shape's manifest through the daemon.
func (c *call) remoteCandidates(ctx context.Context) []string {
	mk := remoteManifestKey(c.shape.Hash)
	found, err := c.o.Daemon.RemoteCheck(ctx, mk, c.o.CheckDeadline)
	if err != nil || !found {
		return nil
	}
	dir, err := c.store.Lookup(mk)
	if err != nil {
		return nil
	}
	return c.candidates(readManifest(filepath.Join(dir, "manifest.json")))
}

// tryLocal restores key from the store. A corrupt entry is removed, so
// the compile that follows stores a good one.
func (c *call) tryLocal(key, outcome string) (int, bool) {
	dir, err := c.store.Lookup(key)
	if err != nil {
		return 0, false
	}
	m, err := c.restore(dir)
	if err != nil {
		c.rec.Reason = "entry unusable, compiled instead: " + err.Error()
		_ = c.store.Remove(key)
		return 0, false
	}
	c.replay(m)
	c.rec.Outcome, c.rec.Key, c.rec.SavedMs = outcome, key, m.CompileMs
	return 0, true
}

// replay prints what rustc printed, with the current directories.
func (c *call) replay(m *Meta) {
	io.WriteString(c.o.Stdout, c.n.denorm(m.Stdout))
	io.WriteString(c.o.Stderr, c.n.denorm(m.Stderr))
}
