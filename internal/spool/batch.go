package spool

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// batchWriters bounds how many intents a batch writes at once: without
// fsync each write is CPU-bound, so more writers than cores gain nothing.
const batchWriters = 4

// WriteIntents is WriteIntent for a batch: every entry is validated first
// (nothing is written if one is bad: an error wrapping ErrInvalidEntry),
// then the intents are written concurrently, each renamed into place (no
// fsync, as WriteIntent). It returns the entries with absolute paths.
func WriteIntents(spoolDir string, es []Entry, clientEpoch int64) ([]Entry, error) {
	abs := make([]Entry, len(es))
	for i, e := range es {
		p, err := validate(e)
		if err != nil {
			return nil, err
		}
		abs[i] = Entry{Key: e.Key, Path: p, Build: e.Build}
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool %s: %w", spoolDir, err)
	}
	if err := writeAll(spoolDir, abs, clientEpoch); err != nil {
		return nil, err
	}
	return abs, nil
}

// writeAll writes the intents with batchWriters goroutines; the first
// error wins.
func writeAll(spoolDir string, es []Entry, clientEpoch int64) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan Entry)
	)
	now := time.Now().UTC()
	for range min(batchWriters, len(es)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				data, _ := json.Marshal(Intent{Key: e.Key, Path: e.Path, CreatedAt: now, ClientEpoch: clientEpoch, BuildPid: e.Build})
				if err := writeIntent(spoolDir, e.Key+intentExt, data); err != nil {
					once.Do(func() { first = fmt.Errorf("spool intent for %s: %w", e.Key, err) })
				}
			}
		}()
	}
	for _, e := range es {
		next <- e
	}
	close(next)
	wg.Wait()
	return first
}

// ValidateEntry checks an entry as WriteIntent would, without writing: a
// valid key and a path to a regular file or a directory.
func ValidateEntry(e Entry) error {
	_, err := validate(e)
	return err
}

// validate returns the entry's absolute path, or an error wrapping
// ErrInvalidEntry that says what is allowed.
func validate(e Entry) (string, error) {
	if err := cachekey.Valid(e.Key); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	p, err := checkSource(e.Path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	return p, nil
}
