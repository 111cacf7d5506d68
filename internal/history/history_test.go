package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerationsNewestFirstWithKilledOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	t0 := time.Now().Add(-time.Hour)
	a := NewWriter(path, 10, t0)
	must(t, a.Append(Record{Kind: KindStart, How: HowStart, Version: "v1"}))
	must(t, a.Append(Record{Kind: KindState, From: "running", To: "draining", Cause: "kache daemon stop"}))
	must(t, a.Append(Record{Kind: KindEnd, Reason: "stop", Code: 0, Drained: 3}))
	b := NewWriter(path, 11, t0.Add(time.Minute))
	must(t, b.Append(Record{Kind: KindStart, How: "auto:upload"}))
	c := NewWriter(path, 12, t0.Add(2*time.Minute))
	must(t, c.Append(Record{Kind: KindStart, How: HowSuccessor, Predecessor: 11}))
	// A crash can cut the last line short: it is skipped.
	appendRaw(t, path, `{"ts":"2026-`)

	gens, err := Load(path)
	must(t, err)
	if len(gens) != 3 || gens[0].Pid != 12 || gens[2].Pid != 10 {
		t.Fatalf("generations = %+v, want pids 12, 11, 10", gens)
	}
	Mark(gens, 12, t0.Add(2*time.Minute))
	want := []string{"successor of pid 11; running", "auto-started by `kache upload`; killed or crashed (no exit recorded)",
		"started by `kache daemon start`; stopped (kache daemon stop) (exit 0; drained 3, left 0, failed 0) after "}
	for i, g := range gens {
		if !strings.Contains(g.Line(), want[i]) {
			t.Errorf("line %d = %q, want it to contain %q", i, g.Line(), want[i])
		}
	}
}

func TestRotationKeepsOnePreviousFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	w := NewWriter(path, 1, time.Now())
	w.limit = 500
	for range 20 {
		must(t, w.Append(Record{Kind: KindState, From: "running", To: "running", Cause: strings.Repeat("x", 100)}))
	}
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		must(t, err)
		if fi.Size() > 500+300 {
			t.Errorf("%s is %d bytes, past the limit", p, fi.Size())
		}
	}
	gens, err := Load(path)
	must(t, err)
	if len(gens) != 1 || gens[0].Start != nil || len(gens[0].States) == 0 {
		t.Fatalf("after rotation: %+v", gens)
	}
	if got := gens[0].StartedWords(); !strings.Contains(got, "rotated away") {
		t.Errorf("StartedWords = %q", got)
	}
}

func TestMissingFileIsNoHistory(t *testing.T) {
	gens, err := Load(filepath.Join(t.TempDir(), "none.jsonl"))
	if err != nil || len(gens) != 0 {
		t.Fatalf("Load = %v, %v", gens, err)
	}
}

func appendRaw(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteString(s)
	must(t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLongLineIsSkipped (issue 16, defect 9): a line over the reader's
// bound (not one of ours) is skipped, not the end of the history.
func TestLongLineIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	a := NewWriter(path, 10, time.Now().Add(-time.Hour))
	must(t, a.Append(Record{Kind: KindStart, How: HowStart}))
	appendRaw(t, path, `{"kind":"state","pid":10,"cause":"`+strings.Repeat("x", 2*maxLine)+"\"}\n")
	b := NewWriter(path, 11, time.Now())
	must(t, b.Append(Record{Kind: KindStart, How: HowStart}))
	gens, err := Load(path)
	must(t, err)
	if len(gens) != 2 || gens[0].Pid != 11 {
		t.Fatalf("generations = %+v, want pids 11 and 10", gens)
	}
}

// TestHandedOverSaysWhy (issue 16, defect 9): the human line of a
// generation that handed over says what started the hand-over.
func TestHandedOverSaysWhy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	a := NewWriter(path, 10, time.Now().Add(-time.Minute))
	must(t, a.Append(Record{Kind: KindStart, How: HowStart}))
	must(t, a.Append(Record{Kind: KindState, From: "running", To: "handing_over", Event: "binary_changed", Cause: "the binary at /x/kache-daemon was replaced"}))
	must(t, a.Append(Record{Kind: KindState, From: "handing_over", To: "handed_over", Cause: "successor pid 11 serves"}))
	must(t, a.Append(Record{Kind: KindEnd, Reason: "handed_over"}))
	gens, err := Load(path)
	must(t, err)
	if want := "handed over to a successor (the binary at /x/kache-daemon was replaced)"; len(gens) != 1 || !strings.Contains(gens[0].Line(), want) {
		t.Fatalf("line %q, want it to contain %q", gens[0].Line(), want)
	}
}
