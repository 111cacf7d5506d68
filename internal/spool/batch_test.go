package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteIntentsBatch(t *testing.T) {
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "upload-queue")
	var es []Entry
	for i := range 300 {
		p := filepath.Join(src, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, []byte{byte(i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		es = append(es, Entry{Key: fmt.Sprintf("k%03d", i), Path: p})
	}
	got, err := WriteIntents(spool, es, 42)
	if err != nil {
		t.Fatal(err)
	}
	intents, err := LoadIntents(spool)
	if err != nil || len(intents) != 300 || len(got) != 300 {
		t.Fatalf("want 300 intents, got %d (returned %d): %v", len(intents), len(got), err)
	}
	for _, in := range intents {
		if !filepath.IsAbs(in.Path) || in.ClientEpoch != 42 {
			t.Fatalf("intent %+v: want an absolute path and epoch 42", in)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(spool, ".*")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestWriteIntentsWritesNothingIfOneIsBad(t *testing.T) {
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "upload-queue")
	good := filepath.Join(src, "good")
	if err := os.WriteFile(good, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]Entry{"bad key": {Key: "../x", Path: good}, "missing path": {Key: "k2", Path: filepath.Join(src, "nope")}} {
		_, err := WriteIntents(spool, []Entry{{Key: "k1", Path: good}, bad}, 0)
		if !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("%s: want ErrInvalidEntry, got %v", name, err)
		}
		if names, _ := os.ReadDir(spool); len(names) != 0 {
			t.Fatalf("%s: the spool holds %d files after a refused batch", name, len(names))
		}
	}
}
