package cacheprog_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"go.uber.org/goleak"
)

// The end-to-end rig: the real go command with GOCACHEPROG pointed at the
// kache binary built by TestMain, a private GOCACHE per build and a kache
// cache dir per rig, building the module in testdata/mod.

var kacheBin string

func TestMain(m *testing.M) {
	var cleanup func()
	kacheBin, cleanup = testenv.BuildBinaries()
	code := m.Run()
	cleanup()
	if code == 0 {
		// A session's goroutines (gets, uploads, leases) end with it.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// rig is one kache cache dir and the builds run against it.
type rig struct {
	t        *testing.T
	root     string
	cacheDir string
	env      []string // extra variables (a remote)
	builds   int      // GOCACHE dirs handed out
	seen     int      // records of builds.jsonl already returned
}

func newRig(t *testing.T) *rig {
	t.Helper()
	root := t.TempDir()
	return &rig{t: t, root: root, cacheDir: filepath.Join(root, "kache")}
}

// module copies the fixture module to a new directory.
func (r *rig) module(name string) string {
	dst := filepath.Join(r.root, name)
	if out, err := exec.Command("cp", "-r", filepath.Join("testdata", "mod"), dst).CombinedOutput(); err != nil {
		r.t.Fatalf("copy fixture: %v\n%s", err, out)
	}
	return dst
}

// goEnv is the environment of a go command: through kache when prog,
// else with the go command's own cache in a fresh directory.
func (r *rig) goEnv(prog bool) []string {
	r.builds++
	vars := map[string]string{"GOCACHE": filepath.Join(r.root, "gocache", strings.Repeat("x", r.builds)),
		"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOWORK": "off", "GOTOOLCHAIN": "local", "GOCACHEPROG": "",
		"KACHE_CACHE_DIR": r.cacheDir, "XDG_CONFIG_HOME": filepath.Join(r.root, "xdg"), "GOMAXPROCS": "2"}
	if prog {
		vars["GOCACHEPROG"] = kacheBin + " cacheprog"
	}
	return append(testenv.Environ(vars), r.env...)
}

// gocmd runs the go command in dir and returns its combined output.
func (r *rig) gocmd(dir string, prog bool, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, r.goEnv(prog)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("go %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out)
}

// buildAndTest builds the fixture's command and tests its library, and
// returns what the command prints and the test's verdict line.
func (r *rig) buildAndTest(dir string, prog bool) (string, string) {
	r.t.Helper()
	bin := filepath.Join(dir, "app")
	r.gocmd(dir, prog, "build", "-o", bin, ".")
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	verdict := r.gocmd(dir, prog, "test", "./greet")
	return string(out), strings.Fields(verdict)[0]
}

// warmRun builds and tests the library alone: every action of a package
// the cold run built, so every get can hit (a go build -o also re-derives
// the link's own entries, which the go command never caches through a
// cache program).
func (r *rig) warmRun(dir string) string {
	r.t.Helper()
	r.gocmd(dir, true, "build", "./greet")
	return strings.Fields(r.gocmd(dir, true, "test", "./greet"))[0]
}

// kache runs a kache command against the rig's cache dir.
func (r *rig) kache(args ...string) (string, error) {
	cmd := exec.Command(kacheBin, args...)
	cmd.Env = append(testenv.Environ(map[string]string{"KACHE_CACHE_DIR": r.cacheDir,
		"XDG_CONFIG_HOME": filepath.Join(r.root, "xdg")}), r.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sessions returns the go sessions builds.jsonl gained since the last
// call, summed.
func (r *rig) sessions() (int, buildlog.GoCounts) {
	r.t.Helper()
	var all []buildlog.Record
	must(r.t, buildlog.Read(filepath.Join(r.cacheDir, "builds.jsonl"), func(rec buildlog.Record) { all = append(all, rec) }))
	recs := all[min(r.seen, len(all)):]
	r.seen = len(all)
	var sum buildlog.GoCounts
	n := 0
	for _, rec := range recs {
		if rec.Tool != "go" || rec.Go == nil {
			continue
		}
		n++
		c := rec.Go
		sum.Gets, sum.Hits, sum.RemoteHits, sum.Misses = sum.Gets+c.Gets, sum.Hits+c.Hits, sum.RemoteHits+c.RemoteHits, sum.Misses+c.Misses
		sum.Puts, sum.BytesIn, sum.BytesOut = sum.Puts+c.Puts, sum.BytesIn+c.BytesIn, sum.BytesOut+c.BytesOut
	}
	return n, sum
}

// logReasons logs the go sessions' recorded problems.
func (r *rig) logReasons() {
	_ = buildlog.Read(filepath.Join(r.cacheDir, "builds.jsonl"), func(rec buildlog.Record) {
		if rec.Tool == "go" && rec.Reason != "" {
			r.t.Logf("session %d: %s", rec.Pid, rec.Reason)
		}
	})
}

// goKeys lists the go entries of the rig's store.
func (r *rig) goKeys() []string {
	des, _ := os.ReadDir(filepath.Join(r.cacheDir, "store"))
	var keys []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "go-") {
			keys = append(keys, de.Name())
		}
	}
	return keys
}

// daemonPid is the running daemon's pid from its state file, or 0.
func (r *rig) daemonPid() int {
	var st struct{ Pid int }
	b, err := os.ReadFile(filepath.Join(r.cacheDir, "daemon.state.json"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	return st.Pid
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
