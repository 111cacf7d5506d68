package eventlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// readEvents decodes every line of an events file; a torn or invalid line
// fails the test.
func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestLogRotatesPastLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l := New(path, nil)
	if l.limit != MaxSize || MaxSize != 1<<20 {
		t.Fatalf("limit = %d, want 1 MiB", l.limit)
	}
	l.limit = 2000
	const n = 100
	for i := range n {
		l.Record(Event{Kind: UploadDone, Key: fmt.Sprintf("k%03d", i), Bytes: int64(i), Ms: 1})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	prev, cur := readEvents(t, path+".1"), readEvents(t, path)
	if len(prev) == 0 {
		t.Fatal("no rotated generation events.jsonl.1")
	}
	for _, p := range []string{path, path + ".1"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() > 2000+200 {
			t.Fatalf("%s: %v, size over the limit", p, err)
		}
	}
	if len(cur) > 0 && cur[len(cur)-1].Key != "k099" {
		t.Fatalf("last event in the current file = %s, want k099", cur[len(cur)-1].Key)
	}
	if len(cur) == 0 && prev[len(prev)-1].Key != "k099" {
		t.Fatalf("last event = %s, want k099", prev[len(prev)-1].Key)
	}
	if got := len(prev) + len(cur); got >= n {
		t.Fatalf("%d events kept of %d: older generations were not dropped", got, n)
	}
	if e := prev[0]; e.TS.IsZero() || e.Kind != UploadDone {
		t.Fatalf("event not stamped or kind lost: %+v", e)
	}
}

func TestLogConcurrentWritersKeepLinesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	l := New(path, nil)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				l.Record(Event{Kind: UploadRetry, Key: fmt.Sprintf("w%d-%d", w, i), Error: "boom"})
			}
		})
	}
	wg.Wait()
	l.Close()
	l.Record(Event{Kind: UploadDone, Key: "after-close"})
	evs := readEvents(t, path)
	if len(evs) != 400 {
		t.Fatalf("%d events, want 400", len(evs))
	}
	for _, e := range evs {
		if e.Key == "after-close" {
			t.Fatal("event recorded after Close")
		}
	}
}

func TestLogNilAndUnwritableAreHarmless(t *testing.T) {
	l := New("", nil)
	if l != nil {
		t.Fatal("an empty path should give a nil Log")
	}
	l.Record(Event{Kind: UploadDone, Key: "k"}) // no panic
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	bad := New(filepath.Join(t.TempDir(), "missing-dir", "events.jsonl"), nil)
	bad.Record(Event{Kind: UploadDone, Key: "k"}) // logged, not fatal
	if _, err := os.Stat(bad.path); !os.IsNotExist(err) {
		t.Fatalf("stat %s: %v", bad.path, err)
	}
}
