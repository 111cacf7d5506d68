package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWriteFileSpareTakesASpare: the write lands in a spare (the spare is
// gone from the directory), whole, and cut to its length though the spare
// held more.
func TestWriteFileSpareTakesASpare(t *testing.T) {
	dir := t.TempDir()
	spares := filepath.Join(dir, "spare")
	old := filepath.Join(dir, "old.json")
	if err := WriteFile(old, []byte(strings.Repeat("x", 4000)), 0o600, ProcessSafe); err != nil {
		t.Fatal(err)
	}
	if err := Retire(old, spares); err != nil {
		t.Fatal(err)
	}
	if n := CountSpares(spares, 10); n != 1 {
		t.Fatalf("%d spares after Retire, want 1", n)
	}
	p := filepath.Join(dir, "new.json")
	f, took, err := CreateSpare(p, ProcessSafe, spares)
	if err != nil || !took {
		t.Fatalf("CreateSpare: took %v, %v; want the spare", took, err)
	}
	f.Write([]byte("short"))
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != "short" {
		t.Fatalf("read %s: %q %v, want exactly the new content", p, data, err)
	}
	if n := CountSpares(spares, 10); n != 0 {
		t.Errorf("%d spares left, want 0", n)
	}
	if got := names(t, dir); len(got) != 2 { // new.json and spare/
		t.Errorf("dir holds %v, want new.json and spare", got)
	}
}

// TestOddSparesAreNotUsed: a spare another process could read or write
// (wrong mode, a second hard link) or a symlink is dropped, and the write
// goes to a fresh file.
func TestOddSparesAreNotUsed(t *testing.T) {
	for _, odd := range []string{"mode", "link", "symlink"} {
		t.Run(odd, func(t *testing.T) {
			dir := t.TempDir()
			spares := filepath.Join(dir, "spare")
			if _, err := AddSpares(spares, 1); err != nil {
				t.Fatal(err)
			}
			ents, _ := os.ReadDir(spares)
			spare := filepath.Join(spares, ents[0].Name())
			outside := filepath.Join(dir, "outside")
			os.WriteFile(outside, []byte("not yours to write"), 0o600)
			switch odd {
			case "mode":
				os.Chmod(spare, 0o644)
			case "link":
				os.Remove(outside)
				os.Link(spare, outside)
			case "symlink":
				os.Remove(spare)
				os.Symlink(outside, spare)
			}
			p := filepath.Join(dir, "k.json")
			if err := WriteFileSpare(p, []byte("mine"), ProcessSafe, spares); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(p); string(data) != "mine" {
				t.Fatalf("k.json holds %q", data)
			}
			if data, _ := os.ReadFile(outside); string(data) == "mine" {
				t.Fatalf("the write went through the odd spare to %s", outside)
			}
			for _, n := range names(t, dir) {
				if strings.HasPrefix(n, TempPrefix) {
					t.Errorf("temp %s left behind", n)
				}
			}
		})
	}
}

// TestConcurrentWritersTakeDistinctSpares: writers racing for few spares
// never share one; every file holds exactly what its writer wrote.
func TestConcurrentWritersTakeDistinctSpares(t *testing.T) {
	dir := t.TempDir()
	spares := filepath.Join(dir, "spare")
	if _, err := AddSpares(spares, 8); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const writers, each = 8, 25
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := filepath.Join(dir, fmt.Sprintf("w%d-%d.json", w, i))
				if err := WriteFileSpare(p, []byte(p), ProcessSafe, spares); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 { // give some back, as the daemon does
					if err := Retire(p, spares); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	for w := range writers {
		for i := range each {
			p := filepath.Join(dir, fmt.Sprintf("w%d-%d.json", w, i))
			data, err := os.ReadFile(p)
			if i%3 == 0 {
				if err == nil {
					t.Errorf("%s still there after Retire", p)
				}
				continue
			}
			if err != nil || string(data) != p {
				t.Errorf("%s: %q %v", p, data, err)
			}
		}
	}
}

// TestTempAgeOfATakenSpare: a spare retired long ago is young once taken,
// so no cleaner removes it from under its writer.
func TestTempAgeOfATakenSpare(t *testing.T) {
	dir := t.TempDir()
	spares := filepath.Join(dir, "spare")
	AddSpares(spares, 1)
	ents, _ := os.ReadDir(spares)
	spare := filepath.Join(spares, ents[0].Name())
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(spare, past, past)
	taken := filepath.Join(dir, sparePrefix+ents[0].Name())
	if err := os.Rename(spare, taken); err != nil {
		t.Fatal(err)
	}
	if age, err := TempAge(taken); err != nil || age > time.Hour {
		t.Fatalf("age of a just-taken spare: %s %v, want young", age, err)
	}
	plain := filepath.Join(dir, TempPrefix+"crashed")
	os.WriteFile(plain, nil, 0o600)
	os.Chtimes(plain, past, past)
	if age, err := TempAge(plain); err != nil || age < 47*time.Hour {
		t.Fatalf("age of a crashed writer's temp: %s %v, want its mtime's", age, err)
	}
}
