package cli_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/logtail"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/supervisor"
	"github.com/rogpeppe/go-internal/testscript"
)

// The daemon-core scenarios' commands; see each one's doc for its usage.
func init() {
	scriptCmds["exitcode"] = cmdExitCode
	scriptCmds["countdaemons"] = cmdCountDaemons
	scriptCmds["runlock"] = cmdRunLock
	scriptCmds["pidalive"] = cmdPidAlive
	scriptCmds["staysup"] = cmdStaysUp
	scriptCmds["holdconn"] = cmdHoldConn
	scriptCmds["blackhole"] = cmdBlackhole
	scriptCmds["waitstate"] = cmdWaitState
	scriptCmds["waitidle"] = cmdWaitIdle
	scriptCmds["inode"] = cmdInode
	scriptCmds["perm"] = cmdPerm
	scriptCmds["spamlog"] = cmdSpamLog
	scriptCmds["logrotated"] = cmdLogRotated
}

// idleSlack is how late after its deadline an idle exit may come: the issue
// asks for "within a second of the deadline".
const idleSlack = time.Second

// cmdExitCode runs a program like exec and checks its exact exit status,
// which `! exec` cannot: stdout and stderr stay available to later checks.
//
//	exitcode N PROG [ARGS...]
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", strings.Join(args[1:], " "), got, want)
	}
}

// cmdCountDaemons checks how many `kache daemon run` processes serve the
// script's socket, found the way `kache daemon restart` finds them.
//
//	countdaemons N
func cmdCountDaemons(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: countdaemons N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	procs, err := procid.FindDaemons(paths(ts).Socket)
	ts.Check(err)
	if len(procs) != want {
		pids := make([]string, len(procs))
		for i, p := range procs {
			pids[i] = strconv.Itoa(p.Pid)
		}
		ts.Fatalf("%d daemons serve %s (pids %s), want %d", len(procs), paths(ts).Socket, strings.Join(pids, " "), want)
	}
}

// cmdRunLock checks, right now and without waiting, whether the run lock
// is held: `kache daemon stop` must not return before it is free.
//
//	runlock free|held
func cmdRunLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 || args[0] != "free" && args[0] != "held" {
		ts.Fatalf("usage: runlock free|held")
	}
	if held := runlock.LockHeld(paths(ts).RunLock()); held != (args[0] == "held") {
		ts.Fatalf("run lock %s: held=%v, want %s", paths(ts).RunLock(), held, args[0])
	}
}

// cmdPidAlive succeeds if the process exists and is not a zombie (an
// orphaned daemon may wait for a reaper that a container lacks).
//
//	pidalive PID
func cmdPidAlive(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pidalive PID")
	}
	pid, err := strconv.Atoi(args[0])
	ts.Check(err)
	if alive := pidAlive(pid); alive == neg {
		ts.Fatalf("process %d alive=%v", pid, alive)
	}
}

func pidAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // not Linux: kill(0) is all we have
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

// cmdStaysUp asserts that the daemon keeps its run lock for the whole
// duration (it must not exit meanwhile); with -ping it sends a stats
// request every interval, which counts as activity for the idle timer
// (status would not: it only observes).
//
//	staysup [-ping INTERVAL] DURATION
func cmdStaysUp(ts *testscript.TestScript, neg bool, args []string) {
	var ping time.Duration
	if len(args) == 3 && args[0] == "-ping" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		ping, args = d, args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: staysup [-ping INTERVAL] DURATION")
	}
	dur, err := time.ParseDuration(args[0])
	ts.Check(err)
	p := paths(ts)
	end, nextPing := time.Now().Add(dur), time.Now()
	for time.Now().Before(end) {
		if !runlock.LockHeld(p.RunLock()) {
			ts.Fatalf("the daemon exited %s before the end of staysup %s", time.Until(end).Round(time.Millisecond), dur)
		}
		if ping > 0 && !time.Now().Before(nextPing) {
			c := &rpc.Client{Socket: p.Socket, CallTimeout: 5 * time.Second}
			_, err := c.Stats(context.Background())
			c.Close()
			ts.Check(err)
			nextPing = time.Now().Add(ping)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdHoldConn holds a connection to the daemon open, sending nothing, for
// the duration, and asserts that the daemon stays up meanwhile: an open
// connection is work in progress that holds the idle exit off.
//
//	holdconn DURATION
func cmdHoldConn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: holdconn DURATION")
	}
	conn, err := net.DialTimeout("unix", paths(ts).Socket, 2*time.Second)
	ts.Check(err)
	defer conn.Close()
	cmdStaysUp(ts, false, args)
}

// cmdBlackhole listens on a loopback port that accepts connections and
// never answers (a remote that hangs mid-request, so an upload stays in
// flight), and sets VAR to its http:// address.
//
//	blackhole VAR
func cmdBlackhole(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: blackhole VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or answered
		}
	}()
	ts.Defer(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	ts.Setenv(args[0], "http://"+ln.Addr().String())
}

// status asks the daemon for its status over a fresh connection, closed
// before returning: an open connection would hold the idle exit off.
func status(socket string) (*rpc.Status, error) {
	c := &rpc.Client{Socket: socket, CallTimeout: 5 * time.Second}
	defer c.Close()
	return c.Status(context.Background())
}

// cmdWaitState waits until the daemon answers status in the given state.
//
//	waitstate [-t TIMEOUT] STATE
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 15 * time.Second
	if len(args) == 3 && args[0] == "-t" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		timeout, args = d, args[2:]
	}
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitstate [-t TIMEOUT] STATE")
	}
	socket, deadline, last := paths(ts).Socket, time.Now().Add(timeout), ""
	for time.Now().Before(deadline) {
		st, err := status(socket)
		if err == nil && st.State == args[0] {
			fmt.Fprintf(ts.Stdout(), "state %s: %s\n", st.State, st.StateCause)
			return
		}
		last = fmt.Sprint(err)
		if err == nil {
			last = st.State
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("daemon not in state %s after %s (last: %s)", args[0], timeout, last)
}

// cmdWaitIdle checks an idle exit end to end: it asks the daemon for its
// idle deadline (status only observes: it does not move the deadline),
// waits without sending anything until the run lock is free, then checks the exit record: reason "idle", written no earlier than
// the deadline and at most idleSlack after it.
//
//	waitidle
func cmdWaitIdle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: waitidle")
	}
	p := paths(ts)
	deadline := idleDeadline(ts, p.Socket)
	for runlock.LockHeld(p.RunLock()) {
		if time.Since(deadline) > 15*time.Second {
			ts.Fatalf("daemon still running 15s after its idle deadline %s", deadline.Format(time.StampMilli))
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec, err := statefile.ReadExit(p.ExitFile())
	ts.Check(err)
	late := rec.At.Sub(deadline)
	fmt.Fprintf(ts.Stdout(), "exit reason %s, %s after the idle deadline\n", rec.Reason, late.Round(time.Millisecond))
	switch {
	case rec.Reason != "idle":
		ts.Fatalf("exit reason %q, want idle", rec.Reason)
	case late < 0:
		ts.Fatalf("idle exit at %s came %s before the deadline %s", rec.At.Format(time.StampMilli), -late, deadline.Format(time.StampMilli))
	case late > idleSlack:
		ts.Fatalf("idle exit came %s after the deadline, over %s", late, idleSlack)
	}
}

// idleDeadline asks for the daemon's idle deadline. The server may still
// count the connection of a client that has just hung up (it has not read
// the EOF yet), and open connections hold the deadline off, so ask again
// briefly until one is given.
func idleDeadline(ts *testscript.TestScript, socket string) time.Time {
	for range 50 {
		st, err := status(socket)
		ts.Check(err)
		if st.IdleDeadline != nil {
			return *st.IdleDeadline
		}
		if st.IdleTimeoutS == 0 {
			ts.Fatalf("idle exit is disabled (idle_timeout_secs 0)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("status never gave an idle deadline: held off by work in progress")
	return time.Time{}
}

// cmdInode prints a file's identity, its inode number and modification time (a
// file system may hand a freed inode number straight to the next file), to
// tell a replaced file from the one that was there: `inode F`, `cp stdout
// old`, later `! cmp stdout old`.
//
//	inode PATH
func cmdInode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: inode PATH")
	}
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		ts.Fatalf("no inode for %s on this OS", args[0])
	}
	fmt.Fprintln(ts.Stdout(), st.Ino, fi.ModTime().UnixNano())
}

// cmdPerm checks a file's permission bits, portably (stat -c is GNU's).
//
//	perm PATH OCTAL
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm PATH OCTAL")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s has mode %#o, want %#o", args[0], got, want)
	}
}

// spamPathLen is the length of each spamlog source path: under PATH_MAX,
// with components under NAME_MAX.
const spamPathLen = 3600

// cmdSpamLog makes the daemon log a lot through its public protocol, as a
// client would: it spools N upload intents for sources under long paths,
// removes the sources (as a `cargo clean` racing the upload would), hands
// the entries over, and waits until they have all failed. Each failure is
// one warning of about 2*spamPathLen bytes (the path and the error naming it).
//
//	spamlog N
func cmdSpamLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: spamlog N")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	p := paths(ts)
	ts.Check(spamLog(ts.MkAbs("spam"), p.SpoolDir(), p.Socket, n))
	fmt.Fprintf(ts.Stdout(), "%d uploads failed\n", n)
}

// spamLog is spamlog's work, for Go tests too: sources go under top.
func spamLog(top, spoolDir, socket string, n int) error {
	entries, err := spoolVanishing(top, spoolDir, n)
	if err != nil {
		return err
	}
	c := &rpc.Client{Socket: socket, CallTimeout: 30 * time.Second}
	defer c.Close()
	// The daemon may have queued some already (its spool watcher sees
	// intents as they land), so only the call's success is checked here;
	// the loop below waits for every one to fail.
	if _, err := c.Upload(context.Background(), entries); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Stats(context.Background())
		switch {
		case err != nil:
			return err
		case st.UploadsFailed >= int64(n):
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("only %d of %d uploads failed after 60s", st.UploadsFailed, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spoolVanishing writes n intents for files under a long path below top,
// then removes the files: the daemon will find every source gone. The
// intents are written to a staging dir beside the spool and renamed in only
// once the files are gone, since the daemon takes an intent the moment it
// lands.
func spoolVanishing(top, spoolDir string, n int) ([]rpc.UploadEntry, error) {
	staging := spoolDir + ".staging"
	dir := top
	for len(dir) < spamPathLen {
		dir = filepath.Join(dir, strings.Repeat("d", 200))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	entries := make([]rpc.UploadEntry, n)
	for i := range entries {
		e := spool.Entry{Key: fmt.Sprintf("spam-%04d", i), Path: filepath.Join(dir, fmt.Sprintf("%04d", i))}
		if err := os.WriteFile(e.Path, []byte("gone soon"), 0o600); err != nil {
			return nil, err
		}
		if err := spool.WriteIntent(staging, e, 0); err != nil {
			return nil, err
		}
		entries[i] = rpc.UploadEntry{Key: e.Key, Path: e.Path}
	}
	if err := os.RemoveAll(top); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := os.Rename(spool.File(staging, e.Key), spool.File(spoolDir, e.Key)); err != nil {
			return nil, err
		}
	}
	return entries, os.Remove(staging)
}

// cmdLogRotated waits (lumberjack prunes old generations in the background)
// until the daemon log has been rotated as the lifecycle document says: the
// current file starts with the marker, exactly one previous generation lies
// beside it, and no file exceeds the 2 MiB limit.
//
//	logrotated
func cmdLogRotated(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: logrotated")
	}
	logFile := paths(ts).LogFile()
	deadline := time.Now().Add(15 * time.Second)
	for {
		problem := rotationProblem(logFile)
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("log %s not rotated as expected: %s", logFile, problem)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rotationProblem says what is wrong with the log's rotation, "" if nothing.
func rotationProblem(logFile string) string {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return err.Error()
	}
	if !strings.HasPrefix(string(data), logtail.RotatedMarker) {
		return fmt.Sprintf("does not start with %q", logtail.RotatedMarker)
	}
	ext := filepath.Ext(logFile)
	backups, _ := filepath.Glob(strings.TrimSuffix(logFile, ext) + "-*" + ext)
	if len(backups) != 1 {
		return fmt.Sprintf("%d previous generations (%v), want 1", len(backups), backups)
	}
	for _, f := range append(backups, logFile) {
		fi, err := os.Stat(f)
		if err != nil {
			return err.Error()
		}
		if fi.Size() > supervisor.LogLimit {
			return fmt.Sprintf("%s is %d bytes, over the %d-byte limit", f, fi.Size(), supervisor.LogLimit)
		}
	}
	return ""
}
