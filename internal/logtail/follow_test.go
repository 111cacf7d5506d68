package logtail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for one writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// following runs FollowLog in the background; stop cancels it and checks
// that it returned nil promptly.
func following(t *testing.T, path string, n int) (out *syncBuffer, stop func()) {
	t.Helper()
	out = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- FollowLog(ctx, path, n, true, out) }()
	return out, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("FollowLog returned %v after cancel; want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("FollowLog did not return after cancel")
		}
	}
}

// shows waits until the follower has printed want.
func shows(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("output %q", want), func() bool { return out.String() == want })
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestFollowLogNoFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	var out bytes.Buffer
	err := FollowLog(context.Background(), path, 10, false, &out)
	if err == nil || !strings.Contains(err.Error(), "no log at "+path+" yet") || !strings.Contains(err.Error(), "kache daemon start") {
		t.Fatalf("FollowLog of a missing log = %v; want the no-log message", err)
	}
	appendFile(t, path, "one\ntwo\nthree\nfour")
	for n, want := range map[int]string{0: "", 2: "three\nfour", 3: "two\nthree\nfour", 9: "one\ntwo\nthree\nfour"} {
		out.Reset()
		if err := FollowLog(context.Background(), path, n, false, &out); err != nil || out.String() != want {
			t.Errorf("n=%d: printed %q, %v; want %q", n, out.String(), err, want)
		}
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	appendFile(t, path, "")
	if lines, err := Tail(path, 5); err != nil || len(lines) != 0 {
		t.Errorf("LogTail of an empty file = %q, %v", lines, err)
	}
	var all []string
	for i := range 5000 { // ~100 KiB: several backward chunks
		all = append(all, fmt.Sprintf("line %05d %s", i, strings.Repeat("z", i%17)))
	}
	appendFile(t, path, strings.Join(all, "\n")+"\n\n")
	lines, err := Tail(path, 3)
	want := []string{all[4998], all[4999], ""}
	if err != nil || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("Tail(3) = %q, %v; want %q", lines, err, want)
	}
	if lines, _ := Tail(path, 10000); len(lines) != 5001 || lines[0] != all[0] {
		t.Errorf("Tail(more than there are) = %d lines from %q", len(lines), lines[0])
	}
	if _, err := Tail(path+".missing", 3); err == nil {
		t.Error("LogTail of a missing file succeeded")
	}
}

func TestFollowLogAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.log")
	w := &rotator{t: t, path: path, limit: 4 << 10}
	fmt.Fprint(w, "old 1\nold 2\nold 3\n")
	out, stop := following(t, path, 2)
	defer stop()
	want := "old 2\nold 3\n"
	shows(t, out, want)
	fmt.Fprint(w, "new 1\n")
	want += "new 1\n"
	shows(t, out, want)
	for i := range 100 { // 100 x 50 bytes: at least one rotation
		line := fmt.Sprintf("r %03d %s\n", i, strings.Repeat("w", 43))
		fmt.Fprint(w, line)
		want += line
		if i%25 == 0 {
			time.Sleep(time.Millisecond) // let some events interleave with rotations
		}
	}
	if w.rotations != 1 {
		t.Fatalf("%d rotations, want 1", w.rotations)
	}
	fmt.Fprint(w, "after\n")
	want += "after\n"
	testenv.WaitFor(t, 10*time.Second, "every line across the rotation", func() bool {
		return strings.ReplaceAll(out.String(), RotatedMarker, "") == want
	})
	if !strings.Contains(out.String(), RotatedMarker) {
		t.Error("the rotation marker did not show")
	}
}

func TestFollowLogWaitsForFileAndDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "daemon.log")
	out, stop := following(t, path, 10)
	defer stop()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "hello\n")
	shows(t, out, "hello\n")
	appendFile(t, path, "again\n")
	shows(t, out, "hello\nagain\n")
}

func TestFollowLogAfterTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	appendFile(t, path, "a long first line before the reset\n")
	out, stop := following(t, path, 5)
	defer stop()
	shows(t, out, "a long first line before the reset\n")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "reset\n")
	shows(t, out, "a long first line before the reset\nreset\n")
}

// rotator appends to path and rotates it as the daemon's writer does: past
// limit the file is renamed away and a new one starts with RotatedMarker.
type rotator struct {
	t         *testing.T
	path      string
	limit     int
	size      int
	rotations int
}

func (r *rotator) Write(p []byte) (int, error) {
	if r.size+len(p) > r.limit {
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			r.t.Fatal(err)
		}
		appendFile(r.t, r.path, RotatedMarker)
		r.size, r.rotations = len(RotatedMarker), r.rotations+1
	}
	appendFile(r.t, r.path, string(p))
	r.size += len(p)
	return len(p), nil
}
