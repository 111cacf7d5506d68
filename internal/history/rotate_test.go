package history

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStillAtAfterTheOtherGenerationRotated: once the file a writer wrote
// to was renamed away (by the other generation's rotation), that writer
// must not rotate again, which would move the new small file over the
// .1 just made and lose it.
func TestStillAtAfterTheOtherGenerationRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !stillAt(path, fi) {
		t.Fatal("stillAt false for the file at the path")
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if stillAt(path, fi) {
		t.Fatal("stillAt true for a file rotated away")
	}
}
