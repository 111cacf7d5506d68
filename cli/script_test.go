package cli_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/rogpeppe/go-internal/testscript"
)

// kacheBin is the real kache binary, built once by TestMain with
// kache-daemon beside it; every script runs it as a process, as a user
// would.
var kacheBin string

func TestMain(m *testing.M) {
	var cleanup func()
	kacheBin, cleanup = testenv.BuildBinaries()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// TestScripts runs every scenario in testdata/script against the binary.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script", Setup: scriptSetup, Cmds: scriptCmds,
		RequireExplicitExec: true})
}

// scriptSetup gives each script its own cache dir, config, HOME and a short
// socket path (the work dir is too long for a Unix socket), and kills any
// daemon the script left behind.
func scriptSetup(e *testscript.Env) error {
	sockDir, err := os.MkdirTemp("/tmp", "ks")
	if err != nil {
		return err
	}
	work := e.WorkDir
	e.Setenv("PATH", filepath.Dir(kacheBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	e.Setenv("KACHE_BIN", kacheBin)
	e.Setenv("HOME", filepath.Join(work, "home"))
	e.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "config"))
	e.Setenv("XDG_CACHE_HOME", filepath.Join(work, "xdgcache"))
	e.Setenv("KACHE_CACHE_DIR", filepath.Join(work, "cache"))
	e.Setenv("KACHE_SOCKET_PATH", filepath.Join(sockDir, "daemon.sock"))
	e.Setenv("SOCKDIR", sockDir)
	for _, k := range []string{"KACHE_CONFIG", "KACHE_LOG", "KACHE_DAEMON_IDLE_TIMEOUT", "KACHE_REMOTE_DIR", "KACHE_S3_BUCKET", "KACHE_S3_ENDPOINT"} {
		e.Setenv(k, "")
	}
	e.Defer(func() {
		killLeftovers(sockDir)
		os.RemoveAll(sockDir)
	})
	return nil
}

// killLeftovers SIGKILLs every daemon still serving a socket in sockDir.
func killLeftovers(sockDir string) {
	procs, _ := procid.FindDaemons(filepath.Join(sockDir, "daemon.sock"))
	for _, p := range procs {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
}

// scriptCmds are the commands scripts get beyond testscript's own. Other
// test files add theirs in init.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"waitfor":   cmdWaitFor,
	"nofdto":    cmdNoFdTo,
	"daemonsig": cmdDaemonSig,
	"sendraw":   cmdSendRaw,
	"daemonpid": cmdDaemonPid,
}

// paths resolves the script's kache paths from its environment.
func paths(ts *testscript.TestScript) config.Paths {
	p, err := config.ResolvePaths(ts.Getenv)
	ts.Check(err)
	return p
}

// cmdWaitFor polls a condition until it holds or the deadline passes:
//
//	waitfor [-t 10s] running|stopped|locked|file PATH|nofile PATH|log TEXT|count N GLOB
//
// running: status exits 0; stopped: the run lock is free.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	timeout := 15 * time.Second
	if len(args) > 1 && args[0] == "-t" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if len(args) == 0 {
		ts.Fatalf("usage: waitfor [-t D] condition [args]")
	}
	testenv.WaitFor(ts, timeout, "waitfor "+strings.Join(args, " "), condition(ts, args))
}

func condition(ts *testscript.TestScript, args []string) func() bool {
	p := paths(ts)
	switch args[0] {
	case "running": // the daemon answers, in state running (not only started)
		return func() bool {
			st, err := status(p.Socket)
			return err == nil && st.State == "running"
		}
	case "stopped":
		return func() bool { return !runlock.LockHeld(p.RunLock()) }
	case "locked":
		return func() bool { return runlock.LockHeld(p.RunLock()) }
	case "file":
		return func() bool { _, err := os.Stat(ts.MkAbs(args[1])); return err == nil }
	case "nofile":
		return func() bool { _, err := os.Stat(ts.MkAbs(args[1])); return os.IsNotExist(err) }
	case "log":
		return func() bool {
			data, _ := os.ReadFile(p.LogFile())
			return strings.Contains(string(data), strings.Join(args[1:], " "))
		}
	case "count":
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		return func() bool {
			m, _ := filepath.Glob(ts.MkAbs(args[2]))
			return len(m) == n
		}
	}
	ts.Fatalf("waitfor: unknown condition %q", args[0])
	return nil
}

// scriptEnv is the environment a command started by the harness itself
// needs to find the script's daemon (not the test process's defaults).
func scriptEnv(ts *testscript.TestScript) []string {
	vars := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "KACHE_CACHE_DIR", "KACHE_SOCKET_PATH", "KACHE_CONFIG"} {
		vars[k] = ts.Getenv(k)
	}
	return testenv.Environ(vars)
}

// daemonPid is the pid in the state file.
func daemonPid(ts *testscript.TestScript) int {
	rec, err := statefile.ReadState(paths(ts).StateFile())
	ts.Check(err)
	return rec.Pid
}

// cmdDaemonPid stores the daemon's pid in the named variable.
func cmdDaemonPid(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	if len(args) != 1 {
		ts.Fatalf("usage: daemonpid VAR")
	}
	ts.Setenv(args[0], strconv.Itoa(daemonPid(ts)))
}

// cmdDaemonSig sends a signal (TERM, INT, KILL, STOP, CONT) to the daemon.
func cmdDaemonSig(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	sigs := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
		"STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT}
	if len(args) != 1 || sigs[args[0]] == 0 {
		ts.Fatalf("usage: daemonsig TERM|INT|KILL|STOP|CONT")
	}
	ts.Check(syscall.Kill(daemonPid(ts), sigs[args[0]]))
}

// cmdSendRaw writes a file's bytes to the socket as they are and prints the
// response lines the daemon sends back until it closes or goes quiet.
//
//	sendraw FILE | sendraw -size N (N bytes of 'a' with no newline)
func cmdSendRaw(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	var payload []byte
	switch {
	case len(args) == 2 && args[0] == "-size":
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		payload = []byte(strings.Repeat("a", n))
	case len(args) == 1:
		payload = []byte(ts.ReadFile(args[0]))
	default:
		ts.Fatalf("usage: sendraw FILE | sendraw -size N")
	}
	conn, err := net.DialTimeout("unix", paths(ts).Socket, 2*time.Second)
	ts.Check(err)
	defer conn.Close()
	go func() { _, _ = conn.Write(payload) }()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		fmt.Fprintln(ts.Stdout(), sc.Text())
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
}

// copyInstall copies the built kache, and kache-daemon beside it, to dst
// (the kache path) with mtime, which is then their build epoch. A dst not
// named kache (a temp copy an installer renames later) gets kache alone.
func copyInstall(dst string, mtime time.Time) error {
	names := []string{"kache", "kache-daemon"}
	if filepath.Base(dst) != "kache" {
		names = names[:1]
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(kacheBin), name))
		if err != nil {
			return err
		}
		to := filepath.Join(filepath.Dir(dst), name)
		if name == "kache" {
			to = dst
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		// Through a temp file and a rename, as installers do: a running
		// binary cannot be written in place (ETXTBSY).
		tmp := to + ".tmp"
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			return err
		}
		if err := os.Chtimes(tmp, mtime, mtime); err != nil {
			return err
		}
		if err := os.Rename(tmp, to); err != nil {
			return err
		}
	}
	return nil
}

// rejectNeg fails a script that negates (`! cmd`) a command with no
// negative form, which would otherwise run as if the ! were not there and
// pass for the wrong reason.
func rejectNeg(ts *testscript.TestScript, neg bool) {
	if neg {
		ts.Fatalf("this command has no negative form: remove the !")
	}
}
