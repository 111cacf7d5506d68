package wrapper_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyBuild cleans and builds the tiny fixture through kache and returns
// the program's output and each crate's outcome.
func tinyBuild(r *rig, ws string, args ...string) (string, map[string]string) {
	r.t.Helper()
	r.cargo(ws, false, "clean")
	r.cargo(ws, true, append([]string{"build"}, args...)...)
	return r.run(filepath.Join(ws, "target", "debug", "tiny")), outcomes(r.records())
}

func wantAll(t *testing.T, what string, got map[string]string, outcome string) {
	t.Helper()
	for _, c := range []string{"tiny/lib", "tiny/bin"} {
		if got[c] != outcome {
			t.Errorf("%s: %s was %q, want %q (all: %v)", what, c, got[c], outcome, got)
		}
	}
}

// TestKeyInputsEachMiss changes one key input at a time (a feature,
// RUSTFLAGS, a variable read by option_env!, the rustc identity, the
// salt) and sees the crates miss with the right program output; then
// changes things outside the key (an unrelated variable, a touched file,
// another checkout directory) and sees them hit.
func TestKeyInputsEachMiss(t *testing.T) {
	r := newRig(t)
	ws := r.workspace("tiny", "tiny")
	out, o := tinyBuild(r, ws)
	wantAll(t, "cold", o, "miss")
	if !strings.Contains(out, "tiny says quiet") {
		t.Fatalf("cold output %q", out)
	}
	base := r.rustc
	cases := []struct {
		name, want, why string // why: the input `kache why-miss tiny` names
		set             func()
		args            []string
	}{
		{name: "feature", want: "QUIET", why: "changed  cfg", args: []string{"--features", "loud"}},
		{name: "RUSTFLAGS", want: "quiet-flagged", why: "new      env:RUSTFLAGS", set: func() { r.env = []string{"RUSTFLAGS=--cfg kache_flag"} }},
		{name: "option_env! variable", want: "tiny says hey", why: "changed  env-dep:KACHE_TINY_WORD", set: func() { r.env = []string{"KACHE_TINY_WORD=hey"} }},
		{name: "rustc identity", want: "tiny says quiet", why: "changed  rustc", set: func() { r.rustc = r.standin("rustc", "patched: 1") }},
		{name: "salt", want: "tiny says quiet", why: "changed  salt", set: func() { r.env = []string{"KACHE_KEY_SALT=another"} }},
	}
	for _, c := range cases {
		r.env, r.rustc = nil, base
		if c.set != nil {
			c.set()
		}
		out, o := tinyBuild(r, ws, c.args...)
		wantAll(t, c.name, o, "miss")
		if !strings.Contains(out, c.want) {
			t.Errorf("%s: output %q, want %q", c.name, out, c.want)
		}
		if why, _ := r.kache("why-miss", "tiny"); !strings.Contains(why, c.why) {
			t.Errorf("%s: why-miss says\n%s\nwant a line %q", c.name, why, c.why)
		}
	}
	r.env, r.rustc = []string{"KACHE_UNRELATED=1"}, base
	_, o = tinyBuild(r, ws)
	wantAll(t, "unrelated variable", o, "local_hit")
	r.env = nil
	touch(t, filepath.Join(ws, "src", "lib.rs"))
	_, o = tinyBuild(r, ws)
	wantAll(t, "touched source", o, "local_hit")
	other := r.workspace("tiny", "elsewhere/tiny-2")
	out, o = tinyBuild(r, other)
	wantAll(t, "other checkout", o, "local_hit")
	if !strings.Contains(out, "tiny says quiet") {
		t.Errorf("other checkout output %q", out)
	}
	// Each changed input restored hits its own entry again.
	r.env = []string{"KACHE_TINY_WORD=hey"}
	out, o = tinyBuild(r, ws)
	wantAll(t, "variable set again", o, "local_hit")
	if !strings.Contains(out, "tiny says hey") {
		t.Errorf("restored entry output %q", out)
	}
}

// TestSourceEditMisses: an edited source misses, and editing it back hits
// the first entry (variants per shape).
func TestSourceEditMisses(t *testing.T) {
	r := newRig(t)
	ws := r.workspace("tiny", "tiny")
	tinyBuild(r, ws)
	lib := filepath.Join(ws, "src", "lib.rs")
	orig := readFile(t, lib)
	writeFile(t, lib, strings.Replace(orig, `"quiet"`, `"edited"`, 1))
	out, o := tinyBuild(r, ws)
	wantAll(t, "edited", o, "miss")
	if !strings.Contains(out, "tiny says edited") {
		t.Errorf("edited output %q", out)
	}
	writeFile(t, lib, orig)
	out, o = tinyBuild(r, ws)
	wantAll(t, "edited back", o, "local_hit")
	if !strings.Contains(out, "tiny says quiet") {
		t.Errorf("edited-back output %q", out)
	}
	if starts := r.compileStarts(); len(starts) != 4 || slices.IndexFunc(starts, func(c string) bool { return c != "tiny" }) >= 0 {
		t.Errorf("rustc started for %v; want 4 starts (two cold, two edited), none for the hits", starts)
	}
}
