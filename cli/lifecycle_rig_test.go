package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// The harness of the lifecycle end-to-end tests (lifecycle_e2e_test.go,
// lifecycle_service_e2e_test.go): the real kache binary, copied per test so
// it can be replaced under a running daemon, run as processes.

// rig is one isolated kache installation: its own HOME, cache dir, short
// socket path, and copies of the binary it can replace.
type rig struct {
	t   *testing.T
	dir string // binaries, HOME, cache
	p   config.Paths
	env []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("/tmp", "kl")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, p: config.Paths{CacheDir: filepath.Join(dir, "cache"), Socket: filepath.Join(sockDir, "daemon.sock")}}
	t.Cleanup(func() { // runs before TempDir's removal: registered after it
		killLeftovers(sockDir)
		os.RemoveAll(sockDir)
	})
	r.env = testenv.Environ(map[string]string{"HOME": filepath.Join(dir, "home"), "XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_CACHE_HOME": filepath.Join(dir, "xdg"), "KACHE_CACHE_DIR": r.p.CacheDir, "KACHE_SOCKET_PATH": r.p.Socket})
	return r
}

// copyBin copies the built kache (and kache-daemon beside it) to rel under
// the rig with the given mtime, which is their build epoch.
func (r *rig) copyBin(rel string, mtime time.Time) string {
	r.t.Helper()
	dst := filepath.Join(r.dir, rel)
	if err := copyInstall(dst, mtime); err != nil {
		r.t.Fatal(err)
	}
	return dst
}

// lcResult is one finished kache command.
type lcResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs bin with args in the rig's environment (plus extra KEY=VALs).
func (r *rig) run(bin string, extra []string, args ...string) lcResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append([]string(nil), r.env...), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := lcResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		r.t.Fatalf("run %s %v: %v", bin, args, err)
	}
	res.code = cmd.ProcessState.ExitCode()
	return res
}

// ok runs a command that must exit 0.
func (r *rig) ok(bin string, args ...string) lcResult {
	r.t.Helper()
	res := r.run(bin, nil, args...)
	if res.code != 0 {
		r.t.Fatalf("kache %v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

// lcStatusJSON is the part of `kache daemon status --json` the tests read.
type lcStatusJSON struct {
	Binary struct {
		Epoch int64  `json:"epoch"`
		Exe   string `json:"exe"`
	} `json:"binary"`
	Service struct{ Installed bool } `json:"service"`
	Running bool                     `json:"running"`
	Daemon  *rpc.Status              `json:"daemon"`
	Epoch   *struct {
		Binary, Daemon int64
		Relation, Note string
	} `json:"epoch"`
	LastExit  *statefile.ExitRecord  `json:"last_exit"`
	Autostart *struct{ Note string } `json:"autostart"`
}

// statusJSON runs `bin daemon status --json` and decodes it, whatever its
// exit code.
func (r *rig) statusJSON(bin string) lcStatusJSON {
	r.t.Helper()
	res := r.run(bin, nil, "daemon", "status", "--json")
	var s lcStatusJSON
	if err := json.Unmarshal([]byte(res.stdout), &s); err != nil {
		r.t.Fatalf("decode status --json: %v\n%s", err, res.stdout)
	}
	return s
}

// daemonStatus asks the daemon directly, or returns nil.
func (r *rig) daemonStatus() *rpc.Status {
	c := &rpc.Client{Socket: r.p.Socket, CallTimeout: 2 * time.Second}
	defer c.Close()
	st, err := c.Status(context.Background())
	if err != nil {
		return nil
	}
	return st
}

// waitDaemon polls until a running daemon satisfies cond.
func (r *rig) waitDaemon(what string, cond func(*rpc.Status) bool) *rpc.Status {
	r.t.Helper()
	var st *rpc.Status
	lcWait(r.t, 20*time.Second, what, func() bool {
		st = r.daemonStatus()
		return st != nil && st.State == "running" && cond(st)
	})
	return st
}

func anyDaemon(*rpc.Status) bool { return true }

// lastExit is the exit record the last daemon wrote.
func (r *rig) lastExit() statefile.ExitRecord {
	r.t.Helper()
	rec, err := statefile.ReadExit(r.p.ExitFile())
	if err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// fgDaemon is `kache daemon run` in the foreground, our child, so that its
// exit code and the moment it exited can be seen.
type fgDaemon struct {
	cmd      *exec.Cmd
	done     chan struct{}
	code     int
	exitedAt time.Time
	stderr   bytes.Buffer
}

// foreground starts argv (a kache binary and its arguments, or a wrapper
// that execs one) with the rig's environment plus extra, passing files as
// fd 3 onwards.
func (r *rig) foreground(argv []string, files []*os.File, extra ...string) *fgDaemon {
	r.t.Helper()
	d := &fgDaemon{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	d.cmd.Env = append(append([]string(nil), r.env...), extra...)
	d.cmd.Stderr, d.cmd.ExtraFiles = &d.stderr, files
	if err := d.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		d.exitedAt, d.code = time.Now(), d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	r.t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
	})
	return d
}

func (r *rig) runDaemon(bin string, extra ...string) *fgDaemon {
	return r.foreground([]string{bin, "daemon", "run"}, nil, extra...)
}

// wait returns the exit code once the daemon has exited.
func (d *fgDaemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(timeout):
		t.Fatalf("daemon pid %d still runs after %s; stderr:\n%s", d.cmd.Process.Pid, timeout, d.stderr.String())
	}
	return -1
}

// stillRunning asserts the daemon keeps running, in state running, for a
// while: long enough for an epoch event it should not have acted on.
func (r *rig) stillRunning(d *fgDaemon, pid int, window time.Duration) {
	r.t.Helper()
	for end := time.Now().Add(window); time.Now().Before(end); {
		select {
		case <-d.done:
			r.t.Fatalf("daemon exited with %d; it should have kept running. stderr:\n%s", d.code, d.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if st := r.daemonStatus(); st == nil || st.Pid != pid || st.State != "running" {
		r.t.Fatalf("after %s the daemon is %+v, want pid %d running", window, st, pid)
	}
}

// lcWait polls cond every 10 ms until it holds or timeout passes.
func lcWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
