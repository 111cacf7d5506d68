package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// backups lists the rotated generations beside the log (daemon-<time>.log).
func backups(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "daemon-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// oneBackup waits for lumberjack's asynchronous clean-up to leave exactly
// one backup, and returns it.
func oneBackup(t *testing.T, dir string) string {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "exactly one backup", func() bool { return len(backups(t, dir)) == 1 })
	return backups(t, dir)[0]
}

func TestOpenLogRotatesPast2MiB(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.log")
	w, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 90)
	var last string
	for i, total := 0, 0; total < 5<<20; i++ {
		last = fmt.Sprintf("%08d %s\n", i, line)
		n, err := w.Write([]byte(last))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(path)
	if !bytes.HasPrefix(cur, []byte(logtail.RotatedMarker)) {
		t.Errorf("current log starts %q, want the rotation marker", cur[:min(40, len(cur))])
	}
	if len(cur) > LogLimit || !bytes.HasSuffix(cur, []byte(last)) {
		t.Errorf("current log is %d bytes (limit %d), ends with the last line: %v", len(cur), LogLimit, bytes.HasSuffix(cur, []byte(last)))
	}
	old, _ := os.ReadFile(oneBackup(t, dir))
	if len(old) > LogLimit || len(old) < LogLimit-200 || !bytes.HasPrefix(old, []byte(logtail.RotatedMarker)) {
		t.Errorf("backup is %d bytes; want a full rotated generation under %d", len(old), LogLimit)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
}

// The first file is not a rotation: no marker. The size already on disk
// (an earlier daemon's, or the spawner's stderr) counts toward the limit.
func TestOpenLogCountsExistingSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.log")
	w, err := openLog(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "first\n")
	w.Close()
	if data, _ := os.ReadFile(path); string(data) != "first\n" {
		t.Fatalf("new log = %q, want no marker", data)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte("o\n"), 45), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = openLog(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintf(w, "0123456789\n") // 90 + 11 > 100
	if data, _ := os.ReadFile(path); string(data) != logtail.RotatedMarker+"0123456789\n" {
		t.Errorf("after reopening a 90-byte log, current = %q", data)
	}
	if old, _ := os.ReadFile(oneBackup(t, dir)); len(old) != 90 {
		t.Errorf("backup has %d bytes, want the 90 already there", len(old))
	}
}

// Lines written from many goroutines come out whole, and nothing is lost
// across rotations except generations older than the one backup.
func TestOpenLogConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.log")
	w, err := openLog(path, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(w, "g%d line %04d %s\n", g, i, strings.Repeat("y", 40))
			}
		}()
	}
	wg.Wait()
	w.Close()
	old, _ := os.ReadFile(oneBackup(t, dir))
	cur, _ := os.ReadFile(path)
	for _, data := range [][]byte{old, cur} {
		if len(data) > 64<<10 {
			t.Errorf("a generation holds %d bytes, over the limit", len(data))
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		for _, l := range lines[1:] { // [0] is the marker
			if len(l) != 53 || l[0] != 'g' {
				t.Fatalf("torn line %q", l)
			}
		}
	}
}

// TestLogSizeLearnedAtFirstWrite: a successor opens its log while the old
// daemon still grows it; the limit must count what is there at the first
// write, not at open.
func TestLogSizeLearnedAtFirstWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	l, err := openLog(path, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile(path, bytes.Repeat([]byte("old daemon line\n"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("successor line\n")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), logtail.RotatedMarker) || !strings.Contains(string(data), "successor line") {
		t.Fatalf("the first write did not rotate the 1600-byte file past the 1024-byte limit:\n%s", data)
	}
}

// A log that is a symlink (an attacker's pointer to a file of their
// choosing) or another user's file is refused; a log of ours that others
// can read is made private.
func TestOpenLogRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLog(link); err == nil {
		t.Error("OpenLog(symlink) succeeded")
	}
	open := filepath.Join(dir, "open.log")
	if err := os.WriteFile(open, []byte("old\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	w, err := OpenLog(open)
	if err != nil {
		t.Fatalf("OpenLog(0666 of ours) = %v", err)
	}
	w.Close()
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v after open, want 0600", fi.Mode().Perm())
	}
	if os.Getuid() != 0 {
		t.Skip("a file of another user needs root to create (chown); run as root to cover it")
	}
	theirs := filepath.Join(dir, "theirs.log")
	if err := os.WriteFile(theirs, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLog(theirs); err == nil {
		t.Error("OpenLog(another user's file) succeeded")
	}
}
