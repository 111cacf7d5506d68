// Package testenv is what kache's tests share: a short socket directory,
// one wait-with-deadline helper, and the helper-process pattern of os/exec
// (the test binary re-run to play a daemon, a lock holder, an impostor).
// Only tests import it.
package testenv

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// Helper-process variables: the act to play, and its argument.
const (
	actEnv = "KACHE_TEST_HELPER"
	argEnv = "KACHE_TEST_HELPER_ARG"
)

// SockDir is a short temp dir under /tmp: Unix socket paths are capped at
// 107 bytes and t.TempDir() paths can be longer.
func SockDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "k")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// WaitFor polls cond every few milliseconds and fails the test once
// timeout has passed without it. Timeouts are generous on purpose: the
// suite must pass on a loaded 2-core machine, and a passing wait returns as
// soon as the condition holds.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Acts maps a helper act's name to what the re-run test binary does; the
// int is its exit code.
type Acts map[string]func(arg string) int

// RunAct plays the act the environment names, if any, and exits; a
// package's TestMain calls it first.
func RunAct(acts Acts) {
	act := os.Getenv(actEnv)
	if act == "" {
		return
	}
	f, ok := acts[act]
	if !ok {
		os.Stderr.WriteString("testenv: unknown helper act " + act + "\n")
		os.Exit(2)
	}
	os.Exit(f(os.Getenv(argEnv)))
}

// HelperCmd is the test binary re-run to play act with arg.
func HelperCmd(t testing.TB, act, arg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Exe(t))
	cmd.Env = HelperEnv(act, arg)
	return cmd
}

// HelperEnv is our environment plus the variables naming act and arg.
func HelperEnv(act, arg string) []string {
	return append(os.Environ(), actEnv+"="+act, argEnv+"="+arg, "GORACE=atexit_sleep_ms=0")
}

// Exe is the running test binary.
func Exe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
