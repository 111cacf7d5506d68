// Package upload is the client's side of an upload: the entries and keys
// checked before anything is written (bad input fails before any daemon
// is involved), kache's directories checked private, intents written into
// the spool and handed to the daemon through daemonctl.Wrapper, a chunk
// at a time, and failed intents put back. The spool keeps every intent
// whatever becomes of the daemon. `kache upload`, `check` and `prefetch`,
// the Rust wrapper and the cache program reach the spool and the store
// through it.
package upload

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/cachekey"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/store"
	"github.com/kunobi-ninja/kache/rpc"
)

// Entry is one cache entry to upload: its key and its file or directory.
type Entry = spool.Entry

// chunk is how many entries of a batch are spooled and handed over at a
// time, so the daemon uploads the first while the rest are written.
const chunk = 256

// ValidKey checks a key a client names (check, prefetch) by the rule the
// keys of entries follow.
func ValidKey(key string) error { return cachekey.Valid(key) }

// Check validates every entry (a valid key, a path to a regular file or a
// directory) without writing anything; the first bad one is the error.
func Check(entries []Entry) error {
	for _, e := range entries {
		if err := spool.ValidateEntry(e); err != nil {
			return err
		}
	}
	return nil
}

// Private makes sure nobody else may read or plant intents: the cache dir
// and the spool are created 0700 if missing, and refused if another user
// owns them or others can write them.
func Private(p config.Paths) error {
	for _, dir := range []string{p.CacheDir, p.SpoolDir()} {
		if err := safesocket.PrivateDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// Store is the local store the compile wrappers serve from and fill: its
// directory made, and the cache dir checked private (nobody else may
// plant entries, served as hits, or intents).
func Store(p config.Paths) (store.Store, error) {
	if err := os.MkdirAll(p.StoreDir(), 0o700); err != nil {
		return store.Store{}, err
	}
	if err := safesocket.PrivateDir(p.CacheDir); err != nil {
		return store.Store{}, err
	}
	return store.Store{Dir: p.StoreDir()}, nil
}

// Write writes the entries' intents into spoolDir, all or none validated
// first, and returns them as the daemon is sent them (absolute paths).
func Write(spoolDir string, entries []Entry, epoch int64) ([]rpc.UploadEntry, error) {
	abs, err := spool.WriteIntents(spoolDir, entries, epoch)
	if err != nil {
		return nil, err
	}
	wire := make([]rpc.UploadEntry, len(abs))
	for i, e := range abs {
		wire[i] = rpc.UploadEntry{Key: e.Key, Path: e.Path}
	}
	return wire, nil
}

// Batch writes the intents a chunk at a time and hands each chunk to the
// daemon through w. Once the daemon keeps a chunk away (offline and not
// started) or hands off to a successor, the rest is only written: it
// waits in the spool too. handed counts the entries the daemon took.
func Batch(ctx context.Context, w *daemonctl.Wrapper, spoolDir string, entries []Entry, epoch int64) (handed int, out daemonctl.UploadOutcome, err error) {
	for c := range slices.Chunk(entries, chunk) {
		wire, err := Write(spoolDir, c, epoch)
		if err != nil {
			return handed, out, fmt.Errorf("write upload intents: %w", err)
		}
		if out.Kept != nil || out.HandedOff {
			continue
		}
		o := w.Upload(ctx, wire)
		out.Queued, out.Kept, out.HandedOff = out.Queued+o.Queued, o.Kept, o.HandedOff
		if o.Kept == nil && !o.HandedOff {
			handed += len(wire)
		}
	}
	return handed, out, nil
}

// RetryFailed puts the intents in the spool's failed/ back in the spool,
// where a running daemon sees them land and the next one replays them.
func RetryFailed(p config.Paths) (int, error) { return spool.RetryFailed(p.SpoolDir()) }
