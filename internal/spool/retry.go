package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"

	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// RetryFailed moves the intents in <spoolDir>/failed back into the spool,
// for `kache upload --retry-failed` once the cause is fixed. Each is written
// as a fresh intent (temp file, rename; the daemon's group commit syncs it)
// before its failed record is
// removed, so a crash in between leaves a duplicate, never a loss. A key
// that already has an intent in the spool keeps it (it is newer) and its
// failed record is dropped. Records that hold no usable intent (a corrupt
// intent quarantined at load) stay in failed/ and are reported in the
// error. It returns how many intents it put back; a running daemon sees
// them land in the spool and uploads them, else the next one does.
func RetryFailed(spoolDir string) (int, error) {
	failed := filepath.Join(spoolDir, "failed")
	keys := Keys(failed)
	slices.Sort(keys)
	moved, errs := 0, []error(nil)
	for _, key := range keys {
		if err := retryOne(spoolDir, failed, key+intentExt); err != nil {
			errs = append(errs, err)
			continue
		}
		moved++
	}
	return moved, errors.Join(errs...)
}

// retryOne puts failed/name back in the spool, then removes it.
func retryOne(spool, failed, name string) error {
	in, err := readFailedIntent(failed, name)
	if err != nil {
		return fmt.Errorf("%s left in place: %w", filepath.Join(failed, name), err)
	}
	if _, err := os.Lstat(filepath.Join(spool, name)); errors.Is(err, fs.ErrNotExist) {
		in.CreatedAt = time.Now().UTC()
		data, err := json.Marshal(in)
		if err == nil {
			err = writeIntent(spool, name, data)
		}
		if err != nil {
			return fmt.Errorf("put %s back in the spool: %w", in.Key, err)
		}
	}
	if err := os.Remove(filepath.Join(failed, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s was put back in the spool but its failed record stays: %w", in.Key, err)
	}
	return nil
}

// readFailedIntent decodes a failed record and checks that it holds an
// intent the pool can run.
func readFailedIntent(failed, name string) (Intent, error) {
	raw, err := regfile.ReadFile(filepath.Join(failed, name), maxIntent)
	if err != nil {
		return Intent{}, err
	}
	var rec FailedRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return Intent{}, fmt.Errorf("not a failed record: %w", err)
	}
	switch {
	case rec.Key != strings.TrimSuffix(name, intentExt):
		return Intent{}, fmt.Errorf("key %q does not match the file name", rec.Key)
	case !filepath.IsAbs(rec.Path):
		return Intent{}, fmt.Errorf("no usable path (%q): a corrupt intent cannot be retried; upload the entry again", rec.Path)
	}
	if err := cachekey.Valid(rec.Key); err != nil {
		return Intent{}, err
	}
	return rec.Intent, nil
}
