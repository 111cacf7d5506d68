package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSummarizeCountsBytesAndOldest(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "q")
	file := filepath.Join(dir, "f")
	sub := filepath.Join(dir, "d")
	must(t, os.WriteFile(file, make([]byte, 100), 0o600))
	must(t, os.MkdirAll(filepath.Join(sub, "x"), 0o700))
	must(t, os.WriteFile(filepath.Join(sub, "x", "g"), make([]byte, 50), 0o600))
	must(t, WriteIntent(spoolDir, Entry{Key: "k1", Path: file}, 0))
	before := time.Now()
	must(t, WriteIntent(spoolDir, Entry{Key: "k2", Path: sub}, 0))
	must(t, os.WriteFile(File(spoolDir, "bad"), []byte("{"), 0o600))

	s := Summarize(spoolDir)
	if s.Intents != 3 || s.Bytes != 150 {
		t.Errorf("Summarize = %+v, want 3 intents (a corrupt one counted) and 150 bytes", s)
	}
	if s.Oldest.IsZero() || s.Oldest.After(before) {
		t.Errorf("oldest = %s, want k1's time, before %s", s.Oldest, before)
	}
	if _, err := os.Stat(File(spoolDir, "bad")); err != nil {
		t.Errorf("Summarize moved the corrupt intent: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
