package wrapper_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// The end-to-end rig: real cargo and rustc from Debian (/usr/bin, chosen
// explicitly: a rustup toolchain may come first on PATH), crates from
// /usr/share/cargo/registry through a private CARGO_HOME, offline, and the
// kache binary built by TestMain as the wrapper. A rustc stand-in logs
// every start and execs the real rustc, so tests count rustc starts.

var kacheBin string

func TestMain(m *testing.M) {
	var cleanup func()
	kacheBin, cleanup = testenv.BuildBinaries()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const realRustc = "/usr/bin/rustc"

// rig is one test's machine: a cargo home, a rustc stand-in and a kache
// cache dir.
type rig struct {
	t         *testing.T
	root      string
	cargoHome string
	rustc     string // the stand-in cargo is told to use
	startLog  string // one line per rustc start
	cacheDir  string
	env       []string // extra variables for every build
	seen      int      // records of builds.jsonl already returned
}

func needCargo(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/bin/cargo", realRustc, "/usr/share/cargo/registry"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: install Debian's cargo, rustc and librust-*-dev (.ci/run does)", p)
		}
	}
}

func newRig(t *testing.T) *rig {
	t.Helper()
	needCargo(t)
	root := t.TempDir()
	r := &rig{t: t, root: root, cargoHome: filepath.Join(root, "cargo-home"), cacheDir: filepath.Join(root, "kache"),
		startLog: filepath.Join(root, "rustc-starts.log")}
	must(t, os.MkdirAll(r.cargoHome, 0o755))
	must(t, os.WriteFile(filepath.Join(r.cargoHome, "config.toml"), []byte(`[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
`), 0o644))
	r.rustc = r.standin("rustc", "")
	return r
}

// standin writes a rustc stand-in that logs its arguments and execs the
// real rustc; vvExtra, if set, is appended to what `-vV` prints (another
// rustc identity).
func (r *rig) standin(name, vvExtra string) string {
	dir := filepath.Join(r.root, "standin-"+name+vvExtra)
	must(r.t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "rustc")
	script := "#!/bin/sh\necho \"$*\" >> " + r.startLog + "\n"
	if vvExtra != "" {
		script += "if [ \"$1\" = -vV ]; then " + realRustc + " -vV; echo '" + vvExtra + "'; exit 0; fi\n"
	}
	script += "exec " + realRustc + " \"$@\"\n"
	must(r.t, os.WriteFile(p, []byte(script), 0o755))
	return p
}

// workspace copies a fixture from testdata to a new directory.
func (r *rig) workspace(fixture, name string) string {
	dst := filepath.Join(r.root, name)
	must(r.t, os.MkdirAll(filepath.Dir(dst), 0o755))
	out, err := exec.Command("cp", "-r", filepath.Join("testdata", fixture), dst).CombinedOutput()
	if err != nil {
		r.t.Fatalf("copy fixture: %v\n%s", err, out)
	}
	return dst
}

// cargo runs cargo in dir; wrapped says whether kache is the wrapper.
func (r *rig) cargo(dir string, wrapped bool, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("/usr/bin/cargo", args...)
	cmd.Dir = dir
	vars := map[string]string{"PATH": "/usr/bin:/bin", "CARGO_HOME": r.cargoHome, "RUSTC": r.rustc,
		"KACHE_CACHE_DIR": r.cacheDir, "XDG_CONFIG_HOME": filepath.Join(r.root, "xdg"), "CARGO_TERM_COLOR": "never",
		"RUSTC_WRAPPER": "", "RUSTFLAGS": "", "CARGO_BUILD_JOBS": "2"}
	if wrapped {
		vars["RUSTC_WRAPPER"] = kacheBin
	}
	cmd.Env = append(testenv.Environ(vars, "CARGO_", "RUST"), r.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("cargo %v in %s: %v\n%s", args, dir, err, out)
	}
	return string(out)
}

// run runs a built binary and returns its output.
func (r *rig) run(bin string) string {
	r.t.Helper()
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return string(out)
}

// compileStarts lists the crates rustc started to compile the way cargo
// compiles (with dep-info): not probes, nor a build script's own checks.
func (r *rig) compileStarts() []string {
	f, err := os.Open(r.startLog)
	if os.IsNotExist(err) {
		return nil
	}
	must(r.t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "--crate-name") && strings.Contains(l, "--emit=dep-info") {
			out = append(out, crateOf(l))
		}
	}
	return out
}

func (r *rig) resetStarts() { os.Remove(r.startLog) }

func crateOf(line string) string {
	f := strings.Fields(line)
	for i, a := range f {
		if a == "--crate-name" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

// records returns the records builds.jsonl gained since the last call,
// so each build's records stand alone.
func (r *rig) records() []buildlog.Record {
	r.t.Helper()
	var all []buildlog.Record
	must(r.t, buildlog.Read(filepath.Join(r.cacheDir, "builds.jsonl"), func(rec buildlog.Record) { all = append(all, rec) }))
	out := all[min(r.seen, len(all)):]
	r.seen = len(all)
	return out
}

// outcomes maps crate → outcome for the cacheable invocations.
func outcomes(recs []buildlog.Record) map[string]string {
	m := map[string]string{}
	for _, rec := range recs {
		if rec.Crate != "" {
			m[rec.Crate+"/"+rec.Types] = rec.Outcome
		}
	}
	return m
}

// byOutcome lists the crates with outcome.
func byOutcome(recs []buildlog.Record, outcome string) []string {
	var out []string
	for k, o := range outcomes(recs) {
		if o == outcome {
			out = append(out, k)
		}
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }
