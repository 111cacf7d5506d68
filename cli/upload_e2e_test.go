package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// The end-to-end upload scenarios of issue 3 run the real kache binary as
// processes against real remotes: a versitygw server (uploader/s3test) or a
// plain directory. This file holds the harness; the scenarios are in
// upload_e2e_s3_test.go and upload_e2e_local_test.go, the delaying proxy
// in upload_e2e_proxy_test.go.

// cmdTimeout bounds one kache invocation, so a wedged command fails the
// test with its output instead of hanging the run.
const cmdTimeout = 60 * time.Second

// machine is one kache installation as a user sees it: its own cache dir,
// socket, HOME and config, and the environment every command runs with.
// Two machines sharing a remote stand for two hosts.
type machine struct {
	t     *testing.T
	cache string
	sock  string
	env   map[string]string
}

// newMachine makes a machine with no remote, a config file that does not
// exist yet, and a short socket path. Any daemon left serving its socket is
// killed when the test ends.
func newMachine(t *testing.T) *machine {
	t.Helper()
	sockDir, err := os.MkdirTemp("/tmp", "ke")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killLeftovers(sockDir)
		os.RemoveAll(sockDir)
	})
	home := t.TempDir()
	m := &machine{t: t, cache: filepath.Join(home, "cache"), sock: filepath.Join(sockDir, "daemon.sock")}
	m.env = map[string]string{
		"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "config"), "XDG_CACHE_HOME": filepath.Join(home, "xdg"),
		"KACHE_CACHE_DIR": m.cache, "KACHE_SOCKET_PATH": m.sock, "KACHE_CONFIG": filepath.Join(home, "config.toml"),
	}
	return m
}

// set changes environment variables ("K=V"; "K=" unsets K).
func (m *machine) set(kvs ...string) {
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			delete(m.env, k)
		} else {
			m.env[k] = v
		}
	}
}

// writeConfig writes the machine's config.toml.
func (m *machine) writeConfig(body string) {
	writeFile(m.t, m.env["KACHE_CONFIG"], []byte(body))
}

// environ is the machine's own environment (testenv.Environ), without
// anything of ours that could steer the AWS SDK or the user's directories.
func (m *machine) environ() []string {
	return testenv.Environ(m.env, "AWS_", "XDG_", "HOME")
}

// result is one finished kache command.
type result struct {
	args     []string
	out, err string
	code     int
	took     time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("kache %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.took, r.out, r.err)
}

// run runs kache with args and returns what happened, whatever the exit
// code (machine.client, with the test's command timeout).
func (m *machine) run(args ...string) result {
	m.t.Helper()
	r, err := m.client(kacheBin, cmdTimeout, args...)
	if err != nil {
		m.t.Fatalf("run kache %v: %v\n%s", args, err, r)
	}
	return r
}

// ok runs kache and fails the test unless it exits 0.
func (m *machine) ok(args ...string) result {
	m.t.Helper()
	r := m.run(args...)
	if r.code != 0 {
		m.t.Fatalf("want exit 0, got:\n%s\ndaemon log:\n%s", r, m.logTail())
	}
	return r
}

// expect runs kache and fails the test unless it exits with code.
func (m *machine) expect(code int, args ...string) result {
	m.t.Helper()
	r := m.run(args...)
	if r.code != code {
		m.t.Fatalf("want exit %d, got:\n%s", code, r)
	}
	return r
}

// stats is `kache stats --json`.
func (m *machine) stats() rpc.Stats {
	m.t.Helper()
	var st rpc.Stats
	m.decode(m.ok("stats", "--json"), &st)
	return st
}

// status is the daemon part of `kache daemon status --json`.
func (m *machine) status() rpc.Status {
	m.t.Helper()
	var rep struct {
		Daemon *rpc.Status `json:"daemon"`
	}
	r := m.ok("daemon", "status", "--json")
	m.decode(r, &rep)
	if rep.Daemon == nil {
		m.t.Fatalf("status --json has no daemon part:\n%s", r)
	}
	return *rep.Daemon
}

func (m *machine) decode(r result, v any) {
	m.t.Helper()
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		m.t.Fatalf("decode output: %v\n%s", err, r)
	}
}

func (m *machine) paths() config.Paths {
	return config.Paths{CacheDir: m.cache, Socket: m.sock}
}

// spool counts the intents waiting in upload-queue/ (failed/ excluded).
func (m *machine) spool() int {
	return len(globs(m.t, filepath.Join(m.paths().SpoolDir(), "*.json")))
}

// failed lists the intents in upload-queue/failed/.
func (m *machine) failed() []string {
	return globs(m.t, filepath.Join(m.paths().FailedDir(), "*.json"))
}

// daemonUp reports whether a daemon holds this machine's run lock.
func (m *machine) daemonUp() bool { return runlock.LockHeld(m.paths().RunLock()) }

// noDaemon fails the test if any daemon process serves this machine's
// socket or holds its run lock.
func (m *machine) noDaemon(why string) {
	m.t.Helper()
	procs, err := procid.FindDaemons(m.sock)
	if err != nil {
		m.t.Fatal(err)
	}
	if len(procs) > 0 || m.daemonUp() {
		m.t.Fatalf("%s: a daemon runs (%d processes found, lock held %v)", why, len(procs), m.daemonUp())
	}
}

// waitGone waits for the daemon process to exit: `daemon stop` returns
// once the run lock is free, a moment before the process has finished.
func (m *machine) waitGone() {
	m.t.Helper()
	if m.daemonUp() {
		m.t.Fatal("the run lock is still held")
	}
	testenv.WaitFor(m.t, 5*time.Second, "the daemon process to exit", func() bool {
		procs, err := procid.FindDaemons(m.sock)
		return err == nil && len(procs) == 0
	})
}

// waitSpoolEmpty waits until every intent is uploaded and no job is left.
func (m *machine) waitSpoolEmpty(timeout time.Duration) rpc.Stats {
	m.t.Helper()
	var st rpc.Stats
	testenv.WaitFor(m.t, timeout, "upload spool to empty", func() bool {
		st = m.stats()
		return st.Queue.Spool == 0 && st.Queue.Queued == 0 && st.Queue.InFlight == 0 && m.spool() == 0
	})
	return st
}

// logTail is the end of the daemon log, for failure messages.
func (m *machine) logTail() string {
	b, _ := os.ReadFile(m.paths().LogFile())
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// eventKeys reads events.jsonl and counts the events of kind per key.
func (m *machine) eventKeys(kind string) map[string]int {
	m.t.Helper()
	data, err := os.ReadFile(m.paths().EventsFile())
	if err != nil {
		m.t.Fatalf("read events: %v", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev eventlog.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			m.t.Fatalf("events.jsonl line %q: %v", line, err)
		}
		if ev.Kind == kind {
			out[ev.Key]++
		}
	}
	return out
}

func globs(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// entries is a batch of cache entries: key -> source path.
type entries map[string]string

// randomFiles writes n files of 2 to 8 KiB of random bytes under dir,
// keyed prefix-000, prefix-001, ...
func randomFiles(t *testing.T, dir, prefix string, n int) entries {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(len(prefix))))
	out := entries{}
	for i := range n {
		key := fmt.Sprintf("%s-%03d", prefix, i)
		buf := make([]byte, 2<<10+rng.IntN(6<<10))
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		path := filepath.Join(dir, key+".bin")
		writeFile(t, path, buf)
		out[key] = path
	}
	return out
}

// batchFile writes the entries as KEY=PATH lines for `upload --from`.
func batchFile(t *testing.T, es entries) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# kache upload batch\n")
	for k, p := range es {
		fmt.Fprintf(&b, "%s=%s\n", k, p)
	}
	path := filepath.Join(t.TempDir(), "batch.txt")
	writeFile(t, path, []byte(b.String()))
	return path
}

// sameBytes fails the test unless the files at got and want are equal.
func sameBytes(t *testing.T, what, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("%s: %s has %d bytes that differ from the %d of %s", what, got, len(g), len(w), want)
	}
}
