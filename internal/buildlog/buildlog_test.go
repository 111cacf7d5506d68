package buildlog

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCountsFromAppend: records appended and read back sum as `kache
// stats` and the monitor show them.
func TestCountsFromAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	for _, r := range []Record{
		{Outcome: LocalHit, SavedMs: 1000, Ms: 2},
		{Outcome: RemoteHit, SavedMs: 500, Ms: 30},
		{Outcome: Miss, Ms: 900},
		{Outcome: Miss, Ms: 100},
		{Outcome: Passthrough, Reason: "probe (-vV)", Ms: 10},
		{Outcome: Passthrough, Reason: "probe (-vV)", Ms: 10},
	} {
		r.At, r.Tool, r.Cargo = time.Now(), "rustc", 12
		if err := Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	var c Counts
	if err := Read(path, func(r Record) {
		if r.Cargo != 12 {
			t.Errorf("cargo_pid not kept: %+v", r)
		}
		c.Add(r)
	}); err != nil {
		t.Fatal(err)
	}
	if c.Invocations != 6 || c.LocalHits != 1 || c.RemoteHits != 1 || c.Misses != 2 || c.Passthrough != 2 ||
		c.Reasons["probe (-vV)"] != 2 || c.HitRate != 0.5 || c.SavedMs != 1500 || c.TookMs != 1052 {
		t.Fatalf("counts %+v", c)
	}
}

// TestReadSkipsOverlong: a line past MaxLine is skipped, the next read.
func TestReadSkipsOverlong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	long := Record{Tool: "rustc", Outcome: Miss, Inputs: map[string]string{"pad": strings.Repeat("x", MaxLine)}}
	for _, r := range []Record{long, {Tool: "rustc", Outcome: LocalHit}} {
		if err := Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := Read(path, func(r Record) { got = append(got, r.Outcome) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != LocalHit {
		t.Fatalf("read %v, want the hit alone", got)
	}
}
