package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// FuzzReadIntent feeds arbitrary bytes to the intent parser as the file
// k.json. The daemon reads every file a client (or a crash) leaves in the
// spool, so the parser must never panic, and must accept only an intent it
// can act on: the file's own key, valid, with an absolute path. Anything
// else is an error, which quarantine turns into a failed record.
func FuzzReadIntent(f *testing.F) {
	for _, seed := range []string{
		`{"key":"k","path":"/src/k.o","created_at":"2026-01-02T03:04:05Z","client_epoch":7}`,
		`{"key":"k","path":"relative/k.o"}`,
		`{"key":"other","path":"/x"}`,
		`{"key":"k","path":"/x"`, // truncated by a crash
		`{"key":"k","path":"/x","created_at":"not a time"}`,
		"", "null", "[]", "\x00\xff\xfe", `{"key":"k","path":"/x","key":"../k"}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "k.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		in, raw, err := readIntent(dir, "k.json")
		if len(data) <= maxIntent && string(raw) != string(data) {
			t.Fatalf("raw bytes returned are %q, the file holds %q", raw, data)
		}
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("a rejected intent carries an empty reason")
			}
			return
		}
		if in.Key != "k" || !filepath.IsAbs(in.Path) || cachekey.Valid(in.Key) != nil {
			t.Fatalf("accepted an intent kache cannot act on: %+v from %q", in, data)
		}
	})
}
