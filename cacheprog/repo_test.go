package cacheprog_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

// repoCommand is one go command run on a copy of this repository, and
// which of its gets may miss even from a warm store: actions the go
// command asks the cache for but never stores, counted by go list.
type repoCommand struct {
	args     []string
	uncached string // a go list -f template printing one x per such action
	extra    int    // such actions go list does not count
}

// repoCommands vet every package, compile and link every test binary but
// run none (-exec true: not even a TestMain, so the copy's cacheprog
// tests never run this test again, nor build kache), and run a few small
// packages' tests for real. A warm `go vet`
// still looks up the compile of each package main and never builds it
// (vet needs only the export data of the packages it imports); every
// `go test` links each test binary again, a link the go command never
// stores.
var repoCommands = []repoCommand{
	{args: []string{"vet", "./..."}, uncached: `{{if eq .Name "main"}}x{{end}}`},
	{args: []string{"test", "-count=1", "-run", "^$", "-exec", "true", "./..."}, uncached: `{{if or .TestGoFiles .XTestGoFiles}}x{{end}}`},
	{args: []string{"test", "-count=1", "./internal/poll", "./internal/bytesize", "./internal/regfile"}, extra: 3},
}

// TestGoRepoThroughKache: `go vet ./...` and `go test ./...` of this
// repository (a copy) through kache give what the go command's own cache
// gives: the same exit codes, the same ok/FAIL/no-test-files line per
// package. Run again, each command with a fresh GOCACHE, through the same
// kache cache dir, every get hits but those of the actions the go command
// never stores (repoCommands).
func TestGoRepoThroughKache(t *testing.T) {
	if testing.Short() {
		t.Skip("vets and compiles the whole repository twice through kache")
	}
	r := newRig(t)
	dir := filepath.Join(r.root, "repo")
	copyModule(t, "..", dir) // cmd/ is ../cmd: the module root
	// The copy's go.mod is never rewritten; modules come from where the
	// test process gets them (its module cache is filled already).
	base := []string{"GOFLAGS=-mod=readonly", "GOPROXY=" + goEnvVar(t, "GOPROXY")}
	r.env = append(base, "GOCACHE="+defaultGoCache(t)) // the reference only
	want, _ := r.repoRun(dir, false)
	r.env = base

	got, cold := r.repoRun(dir, true)
	if !slices.Equal(got, want) {
		t.Fatalf("cold, through kache:\n%s\nwith go's own cache:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got, warm := r.repoRun(dir, true)
	if !slices.Equal(got, want) {
		t.Fatalf("warm, through kache:\n%s\nwith go's own cache:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.logReasons()
	if cold[0].Puts == 0 {
		t.Errorf("go vet ./..., cold: stored nothing: %+v", cold[0])
	}
	for i, c := range repoCommands {
		bound := c.extra
		if c.uncached != "" {
			bound += strings.Count(goList(t, dir, c.uncached), "x")
		}
		w := warm[i]
		t.Logf("go %s: cold %+v; warm %+v; %d uncached actions", strings.Join(c.args, " "), cold[i], w, bound)
		if w.Misses > bound || w.Hits+w.Misses != w.Gets || w.Hits == 0 || w.Puts > w.Misses {
			t.Errorf("go %s, warm from a fresh GOCACHE: %+v; want every get a hit but at most %d (actions the go command never stores)",
				strings.Join(c.args, " "), w, bound)
		}
	}
}

// repoRun runs repoCommands in dir, each with a fresh GOCACHE, and
// returns, for each, its exit code and its verdict lines, sorted, and
// its session's counts when run through kache.
func (r *rig) repoRun(dir string, prog bool) ([]string, []buildlog.GoCounts) {
	r.t.Helper()
	var res []string
	var counts []buildlog.GoCounts
	for _, c := range repoCommands {
		out, code := r.gorun(dir, prog, c.args...)
		res = append(res, fmt.Sprintf("go %s: exit %d", strings.Join(c.args, " "), code))
		res = append(res, verdicts(out)...)
		if prog {
			n, sum := r.sessions()
			if n != 1 {
				r.t.Errorf("go %s: %d cache program sessions recorded, want 1", strings.Join(c.args, " "), n)
			}
			counts = append(counts, sum)
		}
	}
	return res, counts
}

// gorun runs the go command in dir and returns its combined output and
// exit code; a go command that could not run at all fails the test.
func (r *rig) gorun(dir string, prog bool, args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, r.goEnv(prog)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		r.t.Fatalf("go %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// verdicts returns go test's per-package lines ("ok", "FAIL", "?" and
// the package), without their times, sorted.
func verdicts(out string) []string {
	var vs []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "ok" || f[0] == "FAIL" || f[0] == "?") {
			vs = append(vs, f[0]+" "+f[1])
		}
	}
	slices.Sort(vs)
	return vs
}

// copyModule copies the module at src to dst: its regular files, less
// hidden directories and bin/ (built binaries).
func copyModule(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	must(t, err)
}

// goList runs go list -f format ./... in dir.
func goList(t *testing.T, dir, format string) string {
	cmd := exec.Command("go", "list", "-f", format, "./...")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return string(out)
}

func goEnvVar(t *testing.T, name string) string {
	out, err := exec.Command("go", "env", name).Output()
	must(t, err)
	return strings.TrimSpace(string(out))
}
