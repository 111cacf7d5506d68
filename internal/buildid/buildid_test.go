package buildid

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadMatchesGoTool: the ID read from the first pages of this test's
// own binary is what `go tool buildid` prints.
func TestReadMatchesGoTool(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Skipf("go tool buildid: %v", err)
	}
	got, err := Read(exe)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("Read = %q, go tool buildid = %q", got, want)
	}
}

// TestReadRaw: a binary that keeps the ID only in its raw form (Mach-O
// does, at the start of its text) is read too.
func TestReadRaw(t *testing.T) {
	path := filepath.Join(t.TempDir(), "macho")
	body := append(make([]byte, 5000), []byte("\xff Go build ID: \"abc/def\"\n \xff")...)
	if err := os.WriteFile(path, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || got != "abc/def" {
		t.Fatalf("Read = %q, %v", got, err)
	}
}

// TestReadNone: a script has no build ID.
func TestReadNone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read of a script: %v, want ErrNotFound", err)
	}
}

// BenchmarkRead: what the client pays for it.
func BenchmarkRead(b *testing.B) {
	exe, _ := os.Executable()
	for b.Loop() {
		if _, err := Read(exe); err != nil {
			b.Fatal(err)
		}
	}
}
