package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// contractCase is one way the daemon can exit and what the service
// manager must do about it.
type contractCase struct {
	name  string
	codes string // exit per run (see child); the last repeats
	runs  int    // how many times the manager must have started it
}

// contractOptions generates the service files around the test binary
// itself, which acts as the daemon (see child in main_test.go).
func contractOptions(t *testing.T) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{Exe: exe, Socket: "/tmp/kache-test/daemon.sock", Home: t.TempDir(), UID: 1000,
		Env: map[string]string{"KACHE_CACHE_DIR": `/tmp/odd dir/100% "kache" \ $HOME`}}
}

// readRuns returns the child's record of its runs.
func readRuns(t *testing.T, state string) []string {
	t.Helper()
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// checkRuns asserts the run count and that every run got the unit's
// arguments and environment.
func checkRuns(t *testing.T, o Options, state string, exits []exitStatus, want int) {
	t.Helper()
	runs := readRuns(t, state)
	if len(runs) != want || len(exits) != want {
		t.Fatalf("started %d times (exits %v), want %d", len(runs), exits, want)
	}
	wantLine := fmt.Sprintf("%q %q", "daemon run", o.Env["KACHE_CACHE_DIR"])
	for i, r := range runs {
		if r != wantLine {
			t.Errorf("run %d saw args and KACHE_CACHE_DIR %s, want %s", i, r, wantLine)
		}
	}
}

func TestSystemdRestartContract(t *testing.T) {
	t.Parallel()
	o := contractOptions(t)
	svc, _ := SystemdUnits(o)
	rules, err := parseUnit(svc)
	if err != nil {
		t.Fatal(err)
	}
	cases := []contractCase{
		{"epoch stale is restarted once", "75,0", 2},
		{"clean exit is not restarted", "0", 1},
		{"config error is not restarted", "78,0", 1},
		{"crash is restarted", "1,0", 2},
		{"killed is restarted", "kill,0", 2},
		{"SIGTERM is a clean stop", "term,0", 1},
		{"crash loop stops at the start limit", "1", 5},
	}
	runContract(t, o, cases, rules.RestartSec, func(ctx context.Context, env []string) ([]exitStatus, error) {
		return rules.supervise(ctx, env, 10)
	})
}

func TestLaunchdRestartContract(t *testing.T) {
	t.Parallel()
	o := contractOptions(t)
	data, err := LaunchdPlist(o)
	if err != nil {
		t.Fatal(err)
	}
	cases := []contractCase{
		{"epoch stale is restarted once", "75,0", 2},
		{"clean exit is not restarted", "0", 1},
		// launchd cannot exclude one exit code: a config error is restarted,
		// throttled; docs/service.md says so.
		{"config error is restarted, throttled", "78,0", 2},
		{"crash is restarted", "1,0", 2},
		{"killed is restarted", "kill,0", 2},
	}
	runContract(t, o, cases, launchdThrottle*time.Second, func(ctx context.Context, env []string) ([]exitStatus, error) {
		return superviseLaunchd(ctx, data, env, 10)
	})
}

// runContract supervises every case at once (they mostly wait out restart
// delays, so running them together keeps the test short even with
// -parallel 1), then checks each in its own subtest, including that no
// restart came sooner than minGap after the previous start.
func runContract(t *testing.T, o Options, cases []contractCase, minGap time.Duration,
	supervise func(ctx context.Context, env []string) ([]exitStatus, error)) {
	t.Helper()
	type outcome struct {
		state string
		exits []exitStatus
		err   error
	}
	outcomes := make([]outcome, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		outcomes[i].state = filepath.Join(t.TempDir(), "runs")
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			outcomes[i].exits, outcomes[i].err = supervise(ctx, childEnv(outcomes[i].state, c.codes))
		})
	}
	wg.Wait()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if outcomes[i].err != nil {
				t.Fatal(outcomes[i].err)
			}
			exits := outcomes[i].exits
			checkRuns(t, o, outcomes[i].state, exits, c.runs)
			for j := 1; j < len(exits); j++ {
				if gap := exits[j].Started.Sub(exits[j-1].Started); gap < minGap {
					t.Errorf("run %d started %v after run %d, sooner than %v", j, gap, j-1, minGap)
				}
			}
		})
	}
}

func childEnv(state, codes string) []string {
	return []string{childStateEnv + "=" + state, childCodesEnv + "=" + codes}
}

func TestUnitWordsRoundTrip(t *testing.T) {
	for _, s := range []string{"/usr/bin/kache", "/a b/c", `100% "x" \ $y`, ""} {
		words, err := unitWords(execQuote(s))
		if err != nil || len(words) != 1 || words[0] != s {
			t.Errorf("unitWords(execQuote(%q)) = %q, %v", s, words, err)
		}
	}
}
