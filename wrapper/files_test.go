package wrapper_test

import (
	"os"
	"testing"
	"time"
)

func touch(t *testing.T, p string) {
	t.Helper()
	now := time.Now()
	must(t, os.Chtimes(p, now, now))
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	must(t, os.WriteFile(p, []byte(s), 0o644))
}
