package service

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// childStateEnv names the file a helper child appends to; when set, the
// test binary is the child, not the test suite.
const (
	childStateEnv = "KACHE_SERVICE_TEST_CHILD"
	childCodesEnv = "KACHE_SERVICE_TEST_CODES"
)

func TestMain(m *testing.M) {
	if state := os.Getenv(childStateEnv); state != "" {
		os.Exit(child(state, os.Getenv(childCodesEnv)))
	}
	goleak.VerifyTestMain(m)
}

// child is the daemon stand-in run under the test supervisors: it records
// its run (with its argv and KACHE_CACHE_DIR, to check what the unit
// passed) and exits with the code for this run from codes, a comma list
// whose last entry repeats. "kill" and "term" make it die of that signal.
func child(state, codes string) int {
	prev, _ := os.ReadFile(state)
	n := strings.Count(string(prev), "\n")
	line := fmt.Sprintf("%q %q\n", strings.Join(os.Args[1:], " "), os.Getenv("KACHE_CACHE_DIR"))
	f, err := os.OpenFile(state, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 2
	}
	f.WriteString(line)
	f.Close()
	list := strings.Split(codes, ",")
	code := list[min(n, len(list)-1)]
	switch code {
	case "kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "term":
		signalDefault(syscall.SIGTERM)
	}
	c, err := strconv.Atoi(code)
	if err != nil {
		return 2
	}
	return c
}

// signalDefault dies of sig with its default action, as a daemon that did
// not catch it would.
func signalDefault(sig syscall.Signal) {
	syscall.Kill(os.Getpid(), sig)
	for {
		time.Sleep(time.Second) // never reached twice: the signal ends the process
	}
}

// fakeExe writes a small executable to stand for the kache binary.
func fakeExe(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "kache")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}
