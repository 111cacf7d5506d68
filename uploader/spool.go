package uploader

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrInvalidEntry marks an upload entry with a bad key or path. The CLI
// exits 2 on it; the daemon answers bad_request.
var ErrInvalidEntry = errors.New("invalid upload entry")

// Entry is one cache entry to upload: its key and the file or directory
// holding it.
type Entry struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// Intent is the durable record of an Entry waiting for upload, the file
// <spool>/<key>.json. The client writes it before it talks to the daemon, so
// an upload survives a daemon that is down, killed or draining: every daemon
// replays the spool at start, and removes an intent only once the remote has
// confirmed the object.
type Intent struct {
	Key         string    `json:"key"`
	Path        string    `json:"path"`
	CreatedAt   time.Time `json:"created_at"`
	ClientEpoch int64     `json:"client_epoch"`
}

// failedRecord is an intent that will not be retried, with why; it lives in
// <spool>/failed/<key>.json until someone looks at it.
type failedRecord struct {
	Intent
	Raw      string    `json:"raw,omitempty"` // the content of a corrupt intent
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failed_at"`
}

const (
	intentExt = ".json"
	// tempPattern names half-written files; they never end in intentExt.
	tempPattern = ".intent-*.tmp"
	// staleTemp is the age past which a temp file is a crashed writer's.
	staleTemp = time.Hour
	maxRaw    = 4 << 10
)

// WriteIntent validates e and records it durably in spoolDir (created 0700
// if missing): temp file, fsync, rename, fsync of the directory. The client
// calls it on the build's critical path, so it is one small write. A path is
// made absolute; it must name a regular file or a directory.
func WriteIntent(spoolDir string, e Entry, clientEpoch int64) error {
	abs, err := validate(e)
	if err != nil {
		return err
	}
	data, err := json.Marshal(Intent{Key: e.Key, Path: abs, CreatedAt: time.Now().UTC(), ClientEpoch: clientEpoch})
	if err != nil {
		return fmt.Errorf("encode intent for %s: %w", e.Key, err)
	}
	if err := writeAtomic(spoolDir, e.Key+intentExt, data); err != nil {
		return fmt.Errorf("spool intent for %s: %w", e.Key, err)
	}
	return nil
}

// checkSource returns path made absolute if it is a regular file or a
// directory (symlinks followed).
func checkSource(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path: give the file or directory that holds the cache entry")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return "", fmt.Errorf("path %s is a %v, not a regular file or a directory", abs, fi.Mode().Type())
	}
	return abs, nil
}

// writeAtomic writes dir/name through a temp file, creating dir 0700 if it
// is missing. The file and the directory are fsynced, so a rename that
// returned survives a crash.
func writeAtomic(dir, name string, data []byte) error {
	if err := writeSynced(dir, name, data); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeSynced is writeAtomic without the directory fsync, which a batch
// does once for all its files.
func writeSynced(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPattern)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, tempPattern)
		}
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// LoadIntents returns every intent in spoolDir, oldest first. An unreadable
// or corrupt intent does not fail the load: it is logged and moved to
// <spoolDir>/failed with the reason. A missing spool has no intents.
func LoadIntents(spoolDir string) ([]Intent, error) {
	return loadIntents(spoolDir, filepath.Join(spoolDir, "failed"), slog.Default())
}

func loadIntents(spool, failed string, log *slog.Logger) ([]Intent, error) {
	names, err := readNames(spool)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	var intents []Intent
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			removeStale(filepath.Join(spool, name))
		}
		if !strings.HasSuffix(name, intentExt) {
			continue
		}
		in, raw, err := readIntent(spool, name)
		if err != nil {
			log.Warn("corrupt upload intent moved to failed", "file", filepath.Join(spool, name), "err", err)
			quarantine(spool, failed, name, raw, err, log)
			continue
		}
		intents = append(intents, in)
	}
	slices.SortFunc(intents, func(a, b Intent) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.Key, b.Key))
	})
	return intents, nil
}

// readIntent reads and checks <spool>/name; it returns the raw bytes too, for
// the failed record of a corrupt one.
func readIntent(spool, name string) (Intent, []byte, error) {
	raw, err := os.ReadFile(filepath.Join(spool, name))
	if err != nil {
		return Intent{}, nil, err
	}
	var in Intent
	if err := json.Unmarshal(raw, &in); err != nil {
		return Intent{}, raw, fmt.Errorf("decode: %w", err)
	}
	switch {
	case in.Key != strings.TrimSuffix(name, intentExt):
		return in, raw, fmt.Errorf("key %q does not match the file name", in.Key)
	case !filepath.IsAbs(in.Path):
		return in, raw, fmt.Errorf("path %q is not absolute", in.Path)
	}
	if err := ValidKey(in.Key); err != nil {
		return in, raw, err
	}
	return in, raw, nil
}

// quarantine moves a corrupt intent to the failed directory. If even that
// fails the file stays where it is, to be skipped again next time.
func quarantine(spool, failed, name string, raw []byte, cause error, log *slog.Logger) {
	if len(raw) > maxRaw {
		raw = raw[:maxRaw]
	}
	rec := failedRecord{Intent: Intent{Key: strings.TrimSuffix(name, intentExt)},
		Raw: string(raw), Error: cause.Error(), FailedAt: time.Now().UTC()}
	if err := writeFailed(failed, name, rec); err != nil {
		log.Warn("cannot move corrupt intent to failed", "file", name, "err", err)
		return
	}
	if err := os.Remove(filepath.Join(spool, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("cannot remove corrupt intent", "file", name, "err", err)
	}
}

// writeFailed records rec as failed/name.
func writeFailed(failed, name string, rec failedRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(failed, name, data)
}

// removeStale deletes a temp file left by a writer that crashed; a young one
// may belong to a client writing right now.
func removeStale(path string) {
	if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > staleTemp {
		os.Remove(path)
	}
}

// readNames lists dir without sorting or stat; a missing dir is empty.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// countIntents counts the intent files in dir, cheaply (no reads, no stat).
func countIntents(dir string) int {
	names, _ := readNames(dir)
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, intentExt) {
			n++
		}
	}
	return n
}

// intentKeys lists the keys of the intent files in dir without reading them.
func intentKeys(dir string) []string {
	names, _ := readNames(dir)
	var keys []string
	for _, name := range names {
		if key, ok := strings.CutSuffix(name, intentExt); ok {
			keys = append(keys, key)
		}
	}
	return keys
}
