package report

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestWhyMiss: the last miss of a crate type is compared with the earlier
// miss sharing the most inputs (not merely the one before), per type;
// an unknown crate and a lone miss are said so.
func TestWhyMiss(t *testing.T) {
	path := filepath.Join(t.TempDir(), "builds.jsonl")
	miss := func(types, key string, in map[string]string) {
		if err := buildlog.Append(path, buildlog.Record{Tool: "rustc", Crate: "foo", Types: types, Key: key, Outcome: "miss", Inputs: in}); err != nil {
			t.Fatal(err)
		}
	}
	miss("lib", "k1", map[string]string{"src/lib.rs": "a", "flags": "x", "dep": "1"})
	miss("lib", "k2", map[string]string{"src/lib.rs": "z", "flags": "y", "dep": "9"}) // another foo: shares nothing
	miss("lib", "k3", map[string]string{"src/lib.rs": "b", "flags": "x", "new": "n"})
	miss("bin", "k4", map[string]string{"main.rs": "a"})
	ds := WhyMiss(path, "foo")
	if len(ds) != 2 {
		t.Fatalf("WhyMiss = %+v, want one answer per crate type", ds)
	}
	lib := ds[0]
	if lib.Types != "lib" || lib.Last != "k3" || lib.Before != "k1" {
		t.Fatalf("lib: %+v, want k3 compared with k1 (the closest)", lib)
	}
	if !slices.Equal(lib.Changed, []string{"src/lib.rs"}) || !slices.Equal(lib.Added, []string{"new"}) || !slices.Equal(lib.Removed, []string{"dep"}) {
		t.Errorf("lib diff: changed %v added %v removed %v", lib.Changed, lib.Added, lib.Removed)
	}
	if bin := ds[1]; bin.Before != "" || bin.Note == "" {
		t.Errorf("bin, one miss: %+v, want a note and nothing compared", bin)
	}
	if none := WhyMiss(path, "bar"); len(none) != 1 || none[0].Note != "no miss of bar is recorded in "+path {
		t.Errorf("unknown crate: %+v", none)
	}
}

// TestBuilds: rustc calls and go sessions are summed apart, the go hit
// rate over both kinds of hits.
func TestBuilds(t *testing.T) {
	p := config.Paths{CacheDir: t.TempDir()}
	for _, r := range []buildlog.Record{
		{Tool: "rustc", Outcome: "miss"},
		{Tool: "go", Go: &buildlog.GoCounts{Gets: 10, Hits: 4, RemoteHits: 1, Misses: 5, Puts: 5}},
		{Tool: "go", Go: &buildlog.GoCounts{Gets: 10, Hits: 10}},
	} {
		if err := buildlog.Append(BuildsFile(p), r); err != nil {
			t.Fatal(err)
		}
	}
	b, g := Builds(p)
	if b.Invocations != 1 {
		t.Errorf("rustc calls: %d, want 1", b.Invocations)
	}
	if g.Sessions != 2 || g.Gets != 20 || g.Puts != 5 || g.HitRate != 0.75 {
		t.Errorf("go: %+v, want 2 sessions, 20 gets, 5 puts, hit rate 0.75", g)
	}
}

// TestHistoryMarksLive: the generation whose daemon holds the run lock
// (found through its state file: nothing answers on the socket) reads
// running; once nobody holds the lock, the same history reads it ended
// without a record.
func TestHistoryMarksLive(t *testing.T) {
	p := config.Paths{CacheDir: t.TempDir(), Socket: filepath.Join(testenv.SockDir(t), "d.sock")}
	started := time.Now().UTC().Truncate(time.Millisecond)
	w := history.NewWriter(HistoryFile(p), 4242, started)
	if err := w.Append(history.Record{Kind: history.KindStart, TS: started, Version: "v"}); err != nil {
		t.Fatal(err)
	}
	if err := statefile.WriteState(p.StateFile(), statefile.StateRecord{Pid: 4242, StartedAt: started}); err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		gens, err := History(context.Background(), p)
		if err != nil || len(gens) != 1 {
			t.Fatalf("History = %+v, %v", gens, err)
		}
		return gens[0].Running
	}
	lock, err := runlock.TryLock(p.RunLock())
	if err != nil {
		t.Fatal(err)
	}
	if !running() {
		t.Error("the lock holder's generation is not marked running")
	}
	lock.Release()
	if running() {
		t.Error("a generation whose daemon let go of the lock is still marked running")
	}
}
