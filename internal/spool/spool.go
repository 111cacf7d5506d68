// Package spool is the on-disk queue of upload intents,
// <cache>/upload-queue/<key>.json: written by clients before they tell the
// daemon, read and removed by the daemon once the remote has the entry. It
// is shared by both, so it links nothing of the uploader.
package spool

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// ErrInvalidEntry marks an upload entry with a bad key or path. The CLI
// exits 2 on it; the daemon answers bad_request.
var ErrInvalidEntry = errors.New("invalid upload entry")

// Entry is one cache entry to upload: its key and the file or directory
// holding it.
type Entry struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	// Build is the running build that made the entry (cargo, the go
	// command), recorded in the intent so the daemon's uploads wait for
	// it however the intent reaches it; 0: none.
	Build int `json:"build_pid,omitempty"`
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
	BuildPid    int       `json:"build_pid,omitempty"` // the build to wait for (Entry.Build)
}

// FailedRecord is an intent that will not be retried, with why; it lives in
// <spool>/failed/<key>.json until someone looks at it (or `kache upload
// --retry-failed` puts it back).
type FailedRecord struct {
	Intent
	Raw      string    `json:"raw,omitempty"` // the content of a corrupt intent
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failed_at"`
}

const (
	intentExt = ".json"
	// staleTemp is the age past which a temp file is a crashed writer's.
	staleTemp = time.Hour
	maxRaw    = 4 << 10
)

// WriteIntent validates e and records it in spoolDir (created 0700 if
// missing): a temp file renamed into place, without fsync (see writeIntent).
// The client calls it on the build's critical path, so it is one small
// write. A path is made absolute; it must name a regular file or a
// directory.
func WriteIntent(spoolDir string, e Entry, clientEpoch int64) error {
	abs, err := validate(e)
	if err != nil {
		return err
	}
	data, err := json.Marshal(Intent{Key: e.Key, Path: abs, CreatedAt: time.Now().UTC(), ClientEpoch: clientEpoch})
	if err != nil {
		return fmt.Errorf("encode intent for %s: %w", e.Key, err)
	}
	if err := writeIntent(spoolDir, e.Key+intentExt, data); err != nil {
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

// writeIntent writes dir/name through atomicfile without an fsync: the
// rename makes it whole and visible at once, and survives the death of any
// process; the daemon makes it durable against power loss with its group
// commit (see Syncer and docs/durability.md), off the client's path.
// A missing dir is created 0700 (the first upload of a fresh cache).
func writeIntent(dir, name string, data []byte) error {
	err := atomicfile.WriteFileSpare(filepath.Join(dir, name), data, atomicfile.ProcessSafe, SpareDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			err = atomicfile.WriteFile(filepath.Join(dir, name), data, 0o600, atomicfile.ProcessSafe)
		}
	}
	return err
}

// SpareDir holds the spare intent files the daemon keeps so that a client
// writes its intent into an existing file rather than creating one
// (atomicfile's spare.go says why).
func SpareDir(spoolDir string) string { return filepath.Join(spoolDir, "spare") }

// LoadIntents returns every intent in spoolDir, oldest first. An unreadable
// or corrupt intent does not fail the load: it is logged and moved to
// <spoolDir>/failed with the reason. A missing spool has no intents.
func LoadIntents(spoolDir string) ([]Intent, error) {
	return Load(spoolDir, filepath.Join(spoolDir, "failed"), slog.Default())
}

// Load is LoadIntents with the failed directory and logger given.
func Load(spool, failed string, log *slog.Logger) ([]Intent, error) {
	var intents []Intent
	err := Scan(spool, func(key string) bool {
		if in, err := Read(spool, failed, key, log); err == nil {
			intents = append(intents, in)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	slices.SortFunc(intents, func(a, b Intent) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.Key, b.Key))
	})
	return intents, nil
}

// ReadIntent reads and checks the intent of key in spool.
func ReadIntent(spool, key string) (Intent, error) {
	in, _, err := readIntent(spool, key+intentExt)
	return in, err
}

// File is the path of key's intent in spool.
func File(spool, key string) string { return filepath.Join(spool, key+intentExt) }

// WriteFailed records in as failed with cause, durably, in failedDir.
func WriteFailed(failedDir string, in Intent, cause error) error {
	rec := FailedRecord{Intent: in, Error: cause.Error(), FailedAt: time.Now().UTC()}
	return writeFailed(failedDir, in.Key+intentExt, rec)
}

// ReadFailed reads the failed record of key in failedDir.
func ReadFailed(failedDir, key string) (FailedRecord, error) {
	var rec FailedRecord
	data, err := regfile.ReadFile(File(failedDir, key), maxIntent)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("failed record %s: %w", File(failedDir, key), err)
	}
	return rec, nil
}

// maxIntent bounds an intent file: a real one is a few hundred bytes.
const maxIntent = 64 << 10

// readIntent reads and checks <spool>/name; it returns the raw bytes too, for
// the failed record of a corrupt one.
func readIntent(spool, name string) (Intent, []byte, error) {
	raw, err := readRegular(filepath.Join(spool, name), maxIntent)
	if err != nil {
		return Intent{}, raw, err
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
	if err := cachekey.Valid(in.Key); err != nil {
		return in, raw, err
	}
	return in, raw, nil
}

// ErrNotRegular marks a spool entry that is not a regular file (a FIFO, a
// device, a symlink): it is never read, since opening a FIFO blocks.
var ErrNotRegular = regfile.ErrNotRegular

// readRegular reads path if it is a regular file of yours of at most limit
// bytes (regfile checks the type on the open descriptor, so the file
// cannot be swapped between check and read).
func readRegular(path string, limit int64) ([]byte, error) {
	f, fi, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		// Another user's intent would have us upload a file they name.
		return nil, fmt.Errorf("%s belongs to uid %d, not to you: not an intent of yours", path, st.Uid)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than an intent can be (%d)", path, fi.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// quarantine moves a corrupt intent to the failed directory. If even that
// fails the file stays where it is, to be skipped again next time.
func quarantine(spool, failed, name string, raw []byte, cause error, log *slog.Logger) {
	if len(raw) > maxRaw {
		raw = raw[:maxRaw]
	}
	rec := FailedRecord{Intent: Intent{Key: strings.TrimSuffix(name, intentExt)},
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
func writeFailed(failed, name string, rec FailedRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(failed, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(failed, name), data, 0o600, atomicfile.Durable)
}

// isTemp reports whether name is a writer's temp file: atomicfile's, or
// the .tmp files of earlier kache versions.
func isTemp(name string) bool {
	return strings.HasPrefix(name, atomicfile.TempPrefix) || strings.HasSuffix(name, ".tmp")
}

// removeStale deletes a temp file left by a writer that crashed; a young one
// may belong to a client writing right now.
func removeStale(path string) {
	if age, err := atomicfile.TempAge(path); err == nil && age > staleTemp {
		os.Remove(path)
	}
}

// scanChunk is how many names a scan reads from the directory at a time,
// so a spool of 100 000 intents never sits in memory as one list.
const scanChunk = 512

// Scan calls fn with the key of every intent file in dir, in directory
// order, reading the names a chunk at a time, until fn returns false. Temp
// files of crashed writers older than an hour are removed on the way. A
// missing dir has no intents.
func Scan(dir string, fn func(key string) bool) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(scanChunk)
		for _, name := range names {
			if isTemp(name) {
				removeStale(filepath.Join(dir, name))
			}
			if key, ok := strings.CutSuffix(name, intentExt); ok && !fn(key) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Read reads the intent of key in dir. A corrupt or unreadable one (not a
// missing one) is moved to failedDir with the reason, and the error says
// so; a missing one is an error wrapping fs.ErrNotExist.
func Read(dir, failedDir, key string, log *slog.Logger) (Intent, error) {
	in, raw, err := readIntent(dir, key+intentExt)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return in, err
	}
	log.Warn("corrupt upload intent moved to failed", "file", File(dir, key), "err", err)
	quarantine(dir, failedDir, key+intentExt, raw, err, log)
	return in, fmt.Errorf("intent %s moved to failed: %w", File(dir, key), err)
}

// Count counts the intent files in dir without reading them.
func Count(dir string) int {
	n := 0
	_ = Scan(dir, func(string) bool { n++; return true })
	return n
}

// Keys lists the keys of the intent files in dir without reading them.
func Keys(dir string) []string {
	var keys []string
	_ = Scan(dir, func(k string) bool { keys = append(keys, k); return true })
	return keys
}

// Sync makes the intents of keys in dir durable (fsync of each, then one
// of the directory): the daemon's group commit, off the client's path. An
// intent removed meanwhile (uploaded already) needs nothing. A batch of
// more than syncfsAbove intents (a replay, a burst) is one syncfs(2) of the
// spool's file system instead, on Linux: one flush instead of thousands.

func Sync(dir string, keys []string) error {
	if len(keys) > syncfsAbove {
		if err := syncFS(dir); err == nil {
			return nil
		}
	}
	var first error
	for _, k := range keys {
		f, err := os.OpenFile(File(dir, k), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = f.Sync()
			f.Close()
		}
		if err != nil && first == nil {
			first = fmt.Errorf("sync intent %s: %w", k, err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil && first == nil {
		first = fmt.Errorf("sync spool %s: %w", dir, err)
	}
	return first
}
