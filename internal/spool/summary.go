package spool

import (
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Summary is what waits in a spool: for metrics, the monitor and flush.
type Summary struct {
	Intents int       `json:"intents"`
	Bytes   int64     `json:"bytes"`  // size of the sources the readable intents name
	Oldest  time.Time `json:"oldest"` // created_at of the oldest readable intent; zero if none
}

// Summarize reads every intent in dir and sizes its source. It only reads:
// a corrupt intent is counted but not moved (the daemon does that), so
// clients and the monitor may call it with or without a daemon. Its cost
// grows with the spool: one small read and one stat (a walk for a
// directory) per intent.
func Summarize(dir string) Summary {
	var s Summary
	_ = Scan(dir, func(key string) bool {
		s.Intents++
		in, err := ReadIntent(dir, key)
		if err != nil {
			return true
		}
		s.Bytes += SourceSize(in.Path)
		if s.Oldest.IsZero() || in.CreatedAt.Before(s.Oldest) {
			s.Oldest = in.CreatedAt
		}
		return true
	})
	return s
}

// SourceSize is the size of a file, or the total of the regular files
// under a directory; 0 if it is gone.
func SourceSize(path string) int64 {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0
	}
	if !fi.IsDir() {
		return fi.Size()
	}
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
