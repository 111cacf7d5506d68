package monitor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// rec is one rustc record of cargo process cargo, ending now.
func rec(cargo int, crate, outcome string) buildlog.Record {
	r := buildlog.Record{At: time.Now().Add(-5 * time.Millisecond), Tool: "rustc", Cargo: cargo, Crate: crate, Outcome: outcome, Ms: 5}
	switch outcome {
	case buildlog.LocalHit, buildlog.RemoteHit:
		r.SavedMs = 1000
	case buildlog.Passthrough:
		r.Reason = "probe (-vV)"
	}
	return r
}

func appendAll(t *testing.T, path string, rs ...buildlog.Record) {
	t.Helper()
	for _, r := range rs {
		must(t, buildlog.Append(path, r))
	}
}

// poll polls until the log is read to its end (a poll reads a bounded
// amount), at most 100 times.
func poll(t *testing.T, b *Builds) *Build {
	t.Helper()
	var last *Build
	for range 100 {
		cur, errText := b.Poll()
		if errText != "" {
			t.Fatalf("poll: %s", errText)
		}
		if cur != nil && last != nil && cur.Invocations == last.Invocations {
			return cur
		}
		last = cur
	}
	return last
}

func counts(b *Build) [5]int {
	if b == nil {
		return [5]int{}
	}
	return [5]int{b.Invocations, b.LocalHits, b.RemoteHits, b.Misses, b.Passthrough}
}

// TestBuildsFollowsAppends: each poll adds only what was appended since
// the last; another cargo process, or a pause past BuildGap, is another
// build.
func TestBuildsFollowsAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	b := NewBuilds(path)
	if cur, errText := b.Poll(); cur != nil || errText != "" {
		t.Fatalf("no log yet: %+v %q", cur, errText)
	}
	appendAll(t, path, rec(100, "a", buildlog.Miss), rec(100, "b", buildlog.LocalHit), rec(100, "", buildlog.Passthrough))
	cur := poll(t, b)
	if counts(cur) != [5]int{3, 1, 0, 1, 1} || cur.Cargo != 100 || cur.SavedMs != 1000 || cur.Reasons["probe (-vV)"] != 1 {
		t.Fatalf("after 3 records: %+v", cur)
	}
	appendAll(t, path, rec(100, "c", buildlog.RemoteHit), buildlog.Record{At: time.Now(), Tool: "go", Outcome: buildlog.GoSession})
	cur = poll(t, b)
	if counts(cur) != [5]int{4, 1, 1, 1, 1} || cur.HitRate != 2.0/3 || cur.Recent[0].Crate != "c" || len(cur.Recent) != 4 {
		t.Fatalf("after one more (and a go session): %+v", cur)
	}
	early := rec(200, "a", buildlog.LocalHit)
	early.At = time.Now().Add(-3 * BuildGap)
	appendAll(t, path, early)
	if cur = poll(t, b); counts(cur) != [5]int{4, 1, 1, 1, 1} || cur.Cargo != 100 {
		t.Fatalf("another cargo that started earlier is not the current build: %+v", cur)
	}
	appendAll(t, path, rec(200, "z", buildlog.Miss))
	if cur = poll(t, b); counts(cur) != [5]int{1, 0, 0, 1, 0} || cur.Cargo != 200 || cur.Recent[0].Crate != "z" {
		t.Fatalf("the same cargo past the gap is a new build, the current one: %+v", cur)
	}
	for range 3 * maxInvocations {
		appendAll(t, path, rec(300, "x", buildlog.LocalHit))
	}
	if cur = poll(t, b); cur.Invocations != 3*maxInvocations || len(cur.Recent) != maxInvocations {
		t.Fatalf("recent is bounded: %d invocations, %d recent", cur.Invocations, len(cur.Recent))
	}
}

// big is a record of about 900 KiB (under buildlog.MaxLine): past ten of
// them buildlog.Append rotates the log.
func big(cargo int, crate string) buildlog.Record {
	r := rec(cargo, crate, buildlog.Miss)
	r.Inputs = map[string]string{"pad": strings.Repeat("x", 900<<10)}
	return r
}

// TestBuildsRotation: the wrappers rotate the log (rename to .1, one
// more line into the renamed file, then a new file); every record is
// counted once, the rest of the old file first.
func TestBuildsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	b := NewBuilds(path)
	b.Poll() // no file yet: the one that appears is read whole
	for i := range 5 {
		appendAll(t, path, big(7, "early"+string(rune('a'+i))))
	}
	if cur := poll(t, b); cur.Invocations != 5 {
		t.Fatalf("before rotation: %d", cur.Invocations)
	}
	for i := range 5 {
		appendAll(t, path, big(7, "late"+string(rune('a'+i))))
	}
	appendAll(t, path, rec(7, "new1", buildlog.LocalHit), rec(7, "new2", buildlog.LocalHit))
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("buildlog did not rotate: %v", err)
	}
	cur := poll(t, b)
	if counts(cur) != [5]int{12, 2, 0, 10, 0} || cur.Recent[0].Crate != "new2" {
		t.Fatalf("after rotation: %v, newest %q", counts(cur), cur.Recent[0].Crate)
	}
	// The log removed, then started again: read from its start.
	must(t, os.Remove(path))
	poll(t, b)
	appendAll(t, path, rec(7, "again", buildlog.Miss))
	if cur = poll(t, b); cur.Invocations != 13 {
		t.Fatalf("after removal and a new file: %d", cur.Invocations)
	}
}

// TestBuildsTruncationAndReplacement: a log cut shorter than the offset,
// or replaced by rename, is read from its start.
func TestBuildsTruncationAndReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "builds.jsonl")
	b := NewBuilds(path)
	appendAll(t, path, rec(1, "a", buildlog.Miss), rec(1, "b", buildlog.Miss), rec(1, "c", buildlog.Miss))
	poll(t, b)
	must(t, os.Truncate(path, 0))
	appendAll(t, path, rec(1, "d", buildlog.LocalHit))
	if cur := poll(t, b); counts(cur) != [5]int{4, 1, 0, 3, 0} {
		t.Fatalf("after truncation: %v", counts(cur))
	}
	other := filepath.Join(dir, "other.jsonl")
	appendAll(t, other, rec(1, "e", buildlog.LocalHit), rec(1, "f", buildlog.LocalHit))
	must(t, os.Rename(other, path))
	if cur := poll(t, b); counts(cur) != [5]int{6, 3, 0, 3, 0} || cur.Recent[0].Crate != "f" {
		t.Fatalf("after replacement: %v", counts(cur))
	}
}

// TestBuildsOverlongLine: a line longer than buildlog.MaxLine is skipped,
// the lines around it are read.
func TestBuildsOverlongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	b := NewBuilds(path)
	long := rec(1, "long", buildlog.Miss)
	long.Inputs = map[string]string{"pad": strings.Repeat("y", buildlog.MaxLine+10)}
	appendAll(t, path, rec(1, "before", buildlog.Miss), long, rec(1, "after", buildlog.LocalHit))
	if cur := poll(t, b); counts(cur) != [5]int{2, 1, 0, 1, 0} || cur.Recent[0].Crate != "after" {
		t.Fatalf("around an over-long line: %+v", counts(cur))
	}
}

// TestBuildsFirstReadTail: the first poll of a large log reads only its
// last firstTail bytes, skipping the line that offset cuts.
func TestBuildsFirstReadTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	for range 7 { // 6.3 MiB: past firstTail, under buildlog.Limit
		appendAll(t, path, big(1, "old"))
	}
	appendAll(t, path, rec(1, "last", buildlog.LocalHit))
	cur := poll(t, NewBuilds(path))
	if cur.Invocations < 2 || cur.Invocations > 6 || cur.Recent[0].Crate != "last" {
		t.Fatalf("first read of a large log: %d invocations, newest %q", cur.Invocations, cur.Recent[0].Crate)
	}
}

// TestBuildsNotRegular: a FIFO, a symlink to /dev/zero or a device at
// the path is refused at once, never read or waited on.
func TestBuildsNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.jsonl")
	must(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "link.jsonl")
	must(t, os.Symlink("/dev/zero", link))
	paths := []string{fifo, link}
	dev := filepath.Join(dir, "zero.jsonl")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o600, 1<<8|5); err == nil { // /dev/zero's numbers
		paths = append(paths, dev)
	} else {
		t.Logf("no device node (%v): FIFO and symlink only", err)
	}
	for _, p := range paths {
		done := make(chan string, 1)
		go func() {
			_, errText := NewBuilds(p).Poll()
			done <- errText
		}()
		select {
		case errText := <-done:
			if errText == "" {
				t.Errorf("%s: no error", filepath.Base(p))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Poll still blocked after 10 s", filepath.Base(p))
		}
	}
}

// TestBuildsConcurrentWriters: wrappers append while the monitor polls;
// every record is counted once, none torn.
func TestBuildsConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	b := NewBuilds(path)
	b.Poll()
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := buildlog.Append(path, rec(42, "w"+strconv.Itoa(w), buildlog.LocalHit)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var cur *Build
	testenv.WaitFor(t, 30*time.Second, "every record counted", func() bool {
		cur, _ = b.Poll()
		return cur != nil && cur.Invocations >= writers*each
	})
	wg.Wait()
	if cur, _ = b.Poll(); cur.Invocations != writers*each || cur.LocalHits != writers*each {
		t.Fatalf("counted %d of %d records", cur.Invocations, writers*each)
	}
}

// TestBuildsGoSession (issue 14): the go command's cache-program sessions
// show beside the cargo build: the latest one's counts, from records
// written by buildlog, and in the Build tab.
func TestBuildsGoSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	b := NewBuilds(path)
	old := buildlog.Record{At: time.Now().Add(-time.Minute), Tool: "go", Outcome: buildlog.GoSession, Ms: 900,
		Go: &buildlog.GoCounts{Gets: 10, Misses: 10, Puts: 10}}
	last := buildlog.Record{At: time.Now(), Tool: "go", Outcome: buildlog.GoSession, Ms: 1200,
		Go: &buildlog.GoCounts{Gets: 40, Hits: 38, RemoteHits: 5, Misses: 2, Puts: 2, BytesIn: 2048, BytesOut: 1 << 20}}
	appendAll(t, path, old, rec(100, "a", buildlog.Miss), last)
	poll(t, b)
	g := b.LastGo()
	if g == nil || g.Gets != 40 || g.Hits != 38 || g.RemoteHits != 5 || g.Ms != 1200 {
		t.Fatalf("last go session: %+v", g)
	}
	text := strings.Join(buildTab(Snapshot{At: time.Now(), GoSession: g}), "\n")
	for _, want := range []string{"go build (kache cacheprog)", "gets: 40: 38 hits (5 from the remote), 2 misses; hit rate 95%", "puts: 2"} {
		if !strings.Contains(text, want) {
			t.Errorf("Build tab lacks %q:\n%s", want, text)
		}
	}
}
