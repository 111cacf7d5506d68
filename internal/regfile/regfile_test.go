package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test if f does not return in time: a FIFO must never
// hang these calls.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("call blocked")
	}
}

func TestRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stats.json")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	within(t, func() {
		_, err := ReadFile(p, 1<<20)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("ReadFile on a FIFO: %v", err)
		}
		if _, err := OpenAppend(p, 0o600); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenAppend on a FIFO: %v", err)
		}
		if _, err := OpenRW(p, 0o600); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenRW on a FIFO: %v", err)
		}
	})
}

func TestRefusesSymlinkToDevZero(t *testing.T) {
	p := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.Symlink("/dev/zero", p); err != nil {
		t.Fatal(err)
	}
	within(t, func() {
		if _, err := ReadFile(p, 1<<20); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "symlink") {
			t.Errorf("ReadFile through a symlink: %v", err)
		}
		if _, err := OpenAppend(p, 0o600); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenAppend through a symlink: %v", err)
		}
	})
}

func TestReadFileBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("ReadFile at the bound: %q %v", b, err)
	}
	if _, err := ReadFile(p, 9); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadFile over the bound: %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none"), 9); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestRefusesDirectory(t *testing.T) {
	if _, _, err := Open(t.TempDir()); !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Open on a directory: %v", err)
	}
}

func TestLinesSkipsLongLine(t *testing.T) {
	in := "a\n" + strings.Repeat("x", 100) + "\nb\n" + strings.Repeat("y", 50) + "\nc"
	var got []string
	if err := Lines(strings.NewReader(in), 20, func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("lines %q, want a,b,c", got)
	}
}
