package logtail

import (
	"fmt"
	"os"
	"strings"
)

// Tail returns the last n lines of the file at path, reading backwards
// from the end so a large log costs no more than its tail. A final line
// without a newline counts as a line.
func Tail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	off, size, err := tailOffset(f, n)
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	s := strings.TrimSuffix(string(buf), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}
