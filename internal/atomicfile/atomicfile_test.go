package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// names lists dir, to see that no temp file is left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFileReplacesWholly(t *testing.T) {
	for _, mode := range []Durability{Durable, ProcessSafe} {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		if err := WriteFile(p, []byte("old"), 0o600, mode); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(p, []byte("new"), 0o644, mode); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if string(data) != "new" || fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %d: got %q %v, want new 0644", mode, data, fi.Mode().Perm())
		}
		if got := names(t, dir); len(got) != 1 {
			t.Errorf("mode %d: dir holds %v, want only f", mode, got)
		}
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "f"), 0o600, Durable)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(f.Name()), TempPrefix) {
		t.Errorf("temp file %s lacks the prefix %s", f.Name(), TempPrefix)
	}
	f.Write([]byte("half"))
	f.Abort()
	f.Abort() // twice is harmless
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v after Abort, want nothing", got)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestCommitNewRefusesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "obj")
	first, _ := Create(p, 0o644, Durable)
	first.Write([]byte("first"))
	second, _ := Create(p, 0o644, Durable)
	second.Write([]byte("second"))
	if err := first.CommitNew(); err != nil {
		t.Fatal(err)
	}
	if err := second.CommitNew(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CommitNew = %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(p); string(data) != "first" {
		t.Errorf("object holds %q, want the first writer's", data)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("dir holds %v, want only obj (no temp files)", got)
	}
}

func TestCreateInMissingDir(t *testing.T) {
	_, err := Create(filepath.Join(t.TempDir(), "no", "f"), 0o600, Durable)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create in a missing dir = %v, want fs.ErrNotExist", err)
	}
}

// TestCommitReplaceOverADirectory: a file replaces a directory at its path
// (a store entry that changed kind), leaving no temp or aside name.
func TestCommitReplaceOverADirectory(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "entry")
	if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p, 0o644, Durable)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("file now"))
	if err := f.CommitReplace(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != "file now" {
		t.Fatalf("read %s: %q %v, want the file", p, data, err)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("dir holds %v, want only entry", got)
	}
}

// TestPlaceADirectoryOverAFile: a filled temp directory replaces a file.
func TestPlaceADirectoryOverAFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "entry")
	if err := WriteFile(p, []byte("file before"), 0o644, ProcessSafe); err != nil {
		t.Fatal(err)
	}
	tmp, err := TempDir(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(tmp), TempPrefix) {
		t.Errorf("temp dir %s lacks the prefix %s", tmp, TempPrefix)
	}
	if err := os.WriteFile(filepath.Join(tmp, "inner"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Place(tmp, p); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "inner")); err != nil || string(data) != "x" {
		t.Fatalf("read the placed directory: %q %v", data, err)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("dir holds %v, want only entry", got)
	}
}
