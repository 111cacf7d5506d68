package wrapper_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

// deps lists target/debug/deps's rlib and rmeta files with their digests.
func deps(t *testing.T, ws string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(ws, "target", "debug", "deps", "lib*.r*"))
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		s := sha256.Sum256(b)
		out[filepath.Base(f)] = hex.EncodeToString(s[:8])
	}
	return out
}

func appOut(r *rig, ws string) string { return r.run(filepath.Join(ws, "target", "debug", "app")) }

// TestWorkspaceE2E builds the fixture workspace (a lib with a build
// script, a proc-macro and a bin over a dozen Debian-packaged crates):
// without kache, then through it (same artifacts, same program output);
// after `cargo clean` every cacheable crate hits and rustc starts for
// none; another checkout of the same tree hits; an edited source misses
// for its crate and its dependents only; a corrupt entry is compiled
// again and replaced.
func TestWorkspaceE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("real cargo builds")
	}
	r := newRig(t)
	ws := r.workspace("ws", "ws")
	r.cargo(ws, false, "build")
	plainOut, plainDeps := appOut(r, ws), deps(t, ws)
	r.cargo(ws, false, "clean")

	r.cargo(ws, true, "build")
	coldRecs := r.records()
	cold, coldN := outcomes(coldRecs), counts(coldRecs)
	if got := appOut(r, ws); got != plainOut {
		t.Errorf("program output through kache %q, without %q", got, plainOut)
	}
	if got := deps(t, ws); jsonOf(got) != jsonOf(plainDeps) {
		t.Errorf("artifacts differ from a build without kache:\nwith    %v\nwithout %v", got, plainDeps)
	}
	if coldN["miss"] < 25 || coldN["local_hit"]+coldN["remote_hit"] != 0 {
		t.Fatalf("cold build: %v (%v)", coldN, cold)
	}
	for _, want := range []string{"app/bin", "macros/proc-macro", "corelib/lib", "build_script_build/bin", "serde/lib"} {
		if cold[want] != "miss" {
			t.Errorf("cold build: %s was %q, want miss", want, cold[want])
		}
	}

	t.Run("clean rebuild hits without rustc", func(t *testing.T) {
		r.cargo(ws, false, "clean")
		r.resetStarts()
		r.cargo(ws, true, "build")
		recs := r.records()
		if n := counts(recs); n["local_hit"] != coldN["miss"] || n["miss"] != 0 {
			t.Errorf("warm build: %v, want %d local hits (%v)", n, coldN["miss"], outcomes(recs))
		}
		for _, c := range r.compileStarts() {
			if _, ok := cold[c+"/lib"]; ok || c == "app" || c == "macros" || c == "build_script_build" {
				t.Errorf("rustc started for cacheable crate %s on a fully cached build", c)
			}
		}
		if got := appOut(r, ws); got != plainOut {
			t.Errorf("warm program output %q", got)
		}
	})

	t.Run("another checkout hits", func(t *testing.T) {
		other := r.workspace("ws", "elsewhere/checkout-2")
		r.cargo(other, true, "build")
		recs := r.records()
		if n := counts(recs); n["local_hit"] != coldN["miss"] || n["miss"] != 0 {
			t.Errorf("other checkout: %v, want %d local hits (%v)", n, coldN["miss"], outcomes(recs))
		}
		if got := appOut(r, other); got != plainOut {
			t.Errorf("other checkout output %q", got)
		}
	})

	t.Run("an edit rebuilds its crate and dependents only", func(t *testing.T) {
		greet := filepath.Join(ws, "corelib", "src", "greet.rs")
		writeFile(t, greet, strings.Replace(readFile(t, greet), `"hello"`, `"bonjour"`, 1))
		r.cargo(ws, true, "build")
		o := outcomes(r.records())
		if got := byOutcome2(o, "miss"); !slices.Equal(got, []string{"app/bin", "corelib/lib"}) {
			t.Errorf("misses %v, want app and corelib (all: %v)", got, o)
		}
		if got := appOut(r, ws); !strings.Contains(got, "bonjour") {
			t.Errorf("edited output %q", got)
		}
	})

	t.Run("a corrupt entry is compiled again", func(t *testing.T) {
		rec := findRecord(t, r, ws, "app")
		bin, _ := filepath.Glob(filepath.Join(r.cacheDir, "store", rec, "files", "app-*"))
		bin = slices.DeleteFunc(bin, func(p string) bool { return strings.HasSuffix(p, ".d") })
		if len(bin) != 1 {
			t.Fatalf("app's entry files: %v", bin)
		}
		b, err := os.ReadFile(bin[0])
		must(t, err)
		b[len(b)/2] ^= 0xff
		must(t, os.WriteFile(bin[0], b, 0o700))
		r.cargo(ws, false, "clean", "-p", "app")
		r.cargo(ws, true, "build")
		o := outcomes(r.records())
		if o["app/bin"] != "miss" {
			t.Errorf("corrupt entry: app was %q", o["app/bin"])
		}
		if got := appOut(r, ws); !strings.Contains(got, "bonjour") {
			t.Errorf("output after a corrupt entry %q", got)
		}
		r.cargo(ws, false, "clean", "-p", "app")
		r.cargo(ws, true, "build")
		if o := outcomes(r.records()); o["app/bin"] != "local_hit" {
			t.Errorf("the replaced entry: app was %q", o["app/bin"])
		}
	})
}

// counts counts the records of the cacheable invocations by outcome.
func counts(recs []buildlog.Record) map[string]int {
	n := map[string]int{}
	for _, rec := range recs {
		if rec.Crate != "" {
			n[rec.Outcome]++
		}
	}
	return n
}

func byOutcome2(o map[string]string, outcome string) []string {
	var out []string
	for k, v := range o {
		if v == outcome {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// findRecord builds once more (all hits) to learn the key of crate's
// entry from the records.
func findRecord(t *testing.T, r *rig, ws, crate string) string {
	t.Helper()
	r.cargo(ws, false, "clean", "-p", crate)
	r.cargo(ws, true, "build")
	for _, rec := range r.records() {
		if rec.Crate == crate && rec.Key != "" {
			return rec.Key
		}
	}
	t.Fatalf("no record with a key for %s", crate)
	return ""
}
