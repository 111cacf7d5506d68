// Package testenv is what kache's tests share: a short socket directory,
// one wait-with-deadline helper, the helper-process pattern of os/exec
// (the test binary re-run to play a daemon, a lock holder, an impostor),
// and a small tmpfs to fill up (tmpfs.go).
// Only tests import it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Fataler is what WaitFor needs of a test: a testing.TB, or a testscript
// script.
type Fataler interface {
	Fatalf(format string, args ...any)
}

// WaitFor polls cond every few milliseconds and fails the test once
// timeout has passed without it. Timeouts are generous on purpose: the
// suite must pass on a loaded 2-core machine, and a passing wait returns as
// soon as the condition holds. It is the one poll helper of the tests.
func WaitFor(t Fataler, timeout time.Duration, what string, cond func() bool) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
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

// Environ is the environment for a kache process a test starts: this
// process's, without what could steer kache to the developer's own daemon
// or service manager (KACHE_*, LISTEN_*, NOTIFY_SOCKET), without variables
// starting with any of drop, and without the keys of vars; then the
// non-empty vars. It is the one environment builder of the tests.
func Environ(vars map[string]string, drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := vars[k]; set || dropped(k, append(drop, "KACHE_", "LISTEN_", "NOTIFY_SOCKET")) {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func dropped(k string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// BuildBinaries builds kache, kache-daemon and kache-monitor (the
// commands under cmd/, from a package one level below the module root)
// into a fresh temp dir for a TestMain, and returns the kache binary's path
// and a cleanup that removes the dir. Every end-to-end suite runs the real
// binaries this way; a build that fails exits the test binary with 1.
func BuildBinaries() (kache string, cleanup func()) {
	dir, err := os.MkdirTemp("", "kache-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build kache:", err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/kache", "../cmd/kache-daemon", "../cmd/kache-monitor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build kache:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	return filepath.Join(dir, "kache"), func() { os.RemoveAll(dir) }
}
