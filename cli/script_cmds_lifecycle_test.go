package cli_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for the lifecycle scenarios (testdata/script/lifecycle_*).
func init() {
	for name, fn := range map[string]func(*testscript.TestScript, bool, []string){
		"waitstopped": cmdWaitStopped,
		"procgone":    cmdProcGone,
		"procalive":   cmdProcAlive,
		"spawnproc":   cmdSpawnProc,
		"writestate":  cmdWriteState,
		"stalesock":   cmdStaleSock,
		"kachecopy":   cmdKacheCopy,
		"epochvar":    cmdEpochVar,
		"stopwatch":   cmdStopwatch,
	} {
		if _, dup := scriptCmds[name]; dup {
			panic("script command " + name + " defined twice")
		}
		scriptCmds[name] = fn
	}
}

// procState is the state letter of /proc/PID/task/TID/stat ("R", "S", "T",
// "Z", ...), or "" if the task is gone.
func procState(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(data), ')')
	if f := strings.Fields(string(data[i+1:])); i >= 0 && len(f) > 0 {
		return f[0]
	}
	return ""
}

// pidArg parses the one PID argument.
func pidArg(ts *testscript.TestScript, args []string, usage string) int {
	if len(args) != 1 {
		ts.Fatalf("usage: %s", usage)
	}
	pid, err := strconv.Atoi(args[0])
	ts.Check(err)
	return pid
}

// cmdWaitStopped waits until every thread of the daemon (the state file's
// pid) is stopped: SIGSTOP reaches each thread only when it next runs.
//
//	waitstopped
func cmdWaitStopped(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	tasks := fmt.Sprintf("/proc/%d/task/*/stat", daemonPid(ts))
	testenv.WaitFor(ts, 10*time.Second, "every thread of the daemon stopped", func() bool {
		m, _ := filepath.Glob(tasks)
		for _, t := range m {
			if s := procState(t); s != "T" && s != "t" {
				return false
			}
		}
		return len(m) > 0
	})
}

// alive reports whether pid runs (a zombie has exited).
func alive(pid int) bool {
	s := procState(fmt.Sprintf("/proc/%d/stat", pid))
	return s != "" && s != "Z" && s != "X"
}

// cmdProcGone waits until the process has exited (a zombie counts: pid 1
// here may be slow to reap).
//
//	procgone PID
func cmdProcGone(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	pid := pidArg(ts, args, "procgone PID")
	testenv.WaitFor(ts, 10*time.Second, fmt.Sprintf("pid %d gone", pid), func() bool { return !alive(pid) })
}

// cmdProcAlive asserts that the process still runs.
//
//	procalive PID
func cmdProcAlive(ts *testscript.TestScript, neg bool, args []string) {
	pid := pidArg(ts, args, "procalive PID")
	if alive(pid) == neg {
		ts.Fatalf("pid %d alive: %v", pid, alive(pid))
	}
}

// cmdSpawnProc starts a long-lived process in its own session, with the
// script's environment plus leading KEY=VALUE arguments, and stores its pid
// in VAR. It is killed when the script ends.
//
//	spawnproc VAR [KEY=VALUE...] PROG [ARGS...]
func cmdSpawnProc(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	if len(args) < 2 {
		ts.Fatalf("usage: spawnproc VAR [KEY=VALUE...] PROG [ARGS...]")
	}
	env, rest := scriptEnv(ts), args[1:]
	for len(rest) > 1 && strings.Contains(rest[0], "=") {
		env, rest = append(env, rest[0]), rest[1:]
	}
	cmd := exec.Command(lookPathIn(ts, rest[0]), rest[1:]...)
	cmd.Env, cmd.Dir = env, ts.MkAbs(".")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	ts.Check(cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	ts.Defer(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	ts.Setenv(args[0], strconv.Itoa(cmd.Process.Pid))
}

// lookPathIn finds prog on the script's PATH, not the test's.
func lookPathIn(ts *testscript.TestScript, prog string) string {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		if p := filepath.Join(dir, prog); isExecutable(p) {
			return p
		}
	}
	ts.Fatalf("%s not found on the script's PATH", prog)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// cmdWriteState writes a daemon state file naming PID, as a daemon that
// died long ago would have left it (its pid since reused).
//
//	writestate PID
func cmdWriteState(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	pid := pidArg(ts, args, "writestate PID")
	p := paths(ts)
	ts.Check(statefile.WriteState(p.StateFile(), statefile.StateRecord{Pid: pid, Version: "dev", Epoch: 1,
		Exe: kacheBin, State: "running", StateSince: time.Now().Add(-time.Hour), StartedAt: time.Now().Add(-time.Hour),
		Socket: p.Socket, Log: p.LogFile()}))
}

// cmdStaleSock leaves a socket file nobody listens on, as a kill -9 does.
//
//	stalesock
func cmdStaleSock(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: paths(ts).Socket, Net: "unix"})
	ts.Check(err)
	ln.SetUnlinkOnClose(false)
	ts.Check(ln.Close())
}

// cmdKacheCopy copies the kache binary and kache-daemon beside it to DEST
// (under $WORK) with their mtime, and so their build epoch, moved by OFFSET
// from now.
//
//	kachecopy DEST OFFSET
func cmdKacheCopy(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	if len(args) != 2 {
		ts.Fatalf("usage: kachecopy DEST OFFSET (e.g. -1h)")
	}
	off, err := time.ParseDuration(args[1])
	ts.Check(err)
	ts.Check(copyInstall(ts.MkAbs(args[0]), time.Now().Add(off)))
}

// cmdEpochVar stores the build epoch of BIN in VAR.
//
//	epochvar VAR BIN
func cmdEpochVar(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	if len(args) != 2 {
		ts.Fatalf("usage: epochvar VAR BIN")
	}
	ts.Setenv(args[0], strconv.FormatInt(install.Epoch(ts.MkAbs(args[1])), 10))
}

// cmdStopwatch bounds how long the commands since `start` took.
//
//	stopwatch start | stopwatch max DURATION
func cmdStopwatch(ts *testscript.TestScript, neg bool, args []string) {
	rejectNeg(ts, neg)
	switch {
	case len(args) == 1 && args[0] == "start":
		ts.Setenv("STOPWATCH_START", strconv.FormatInt(time.Now().UnixNano(), 10))
	case len(args) == 2 && args[0] == "max":
		limit, err := time.ParseDuration(args[1])
		ts.Check(err)
		start, err := strconv.ParseInt(ts.Getenv("STOPWATCH_START"), 10, 64)
		ts.Check(err)
		took := time.Since(time.Unix(0, start))
		ts.Logf("stopwatch: %s (max %s)", took.Round(time.Millisecond), limit)
		if took > limit {
			ts.Fatalf("took %s, over %s", took.Round(time.Millisecond), limit)
		}
	default:
		ts.Fatalf("usage: stopwatch start | stopwatch max DURATION")
	}
}

// cmdNoFdTo fails if process PID has a descriptor above stderr whose
// target starts with PREFIX (e.g. "pipe:"): one it inherited by mistake.
//
//	nofdto PID PREFIX
func cmdNoFdTo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: nofdto PID PREFIX")
	}
	dir := "/proc/" + args[0] + "/fd"
	ents, err := os.ReadDir(dir)
	ts.Check(err)
	for _, e := range ents {
		if n, _ := strconv.Atoi(e.Name()); n <= 2 {
			continue
		}
		if target, _ := os.Readlink(filepath.Join(dir, e.Name())); strings.HasPrefix(target, args[1]) {
			ts.Fatalf("pid %s has fd %s -> %s", args[0], e.Name(), target)
		}
	}
}
