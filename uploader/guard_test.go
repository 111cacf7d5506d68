package uploader

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSourceGuardWithholdsTheEndOfAChangedFile: a large file changed after
// it was hashed is never handed out whole, whatever the remote checks;
// an unchanged one is handed out exactly, also after a rewind.
func TestSourceGuardWithholdsTheEndOfAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	data := bytes.Repeat([]byte("0123456789abcdef"), (smallFileMax+4096)/16)
	must(t, os.WriteFile(path, data, 0o644))
	open := func() io.ReadSeeker {
		f, err := os.Open(path)
		must(t, err)
		t.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		must(t, err)
		body, _, err := fileBody(f, fi, path)
		must(t, err)
		return body
	}

	body := open()
	half := make([]byte, len(data)/2)
	if _, err := io.ReadFull(body, half); err != nil {
		t.Fatal(err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil { // the SDK rewinds
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("unchanged file: %d bytes, %v; want all %d", len(got), err, len(data))
	}

	body = open()
	changed := bytes.Clone(data)
	changed[len(changed)-1] ^= 0xff // same size, the last byte differs
	must(t, os.WriteFile(path, changed, 0o644))
	got, err = io.ReadAll(body)
	if !errors.Is(err, ErrSourceChanged) || len(got) >= len(data) {
		t.Fatalf("changed file: handed out %d of %d bytes, err %v; want less than all and ErrSourceChanged", len(got), len(data), err)
	}
}
