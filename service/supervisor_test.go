package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"howett.net/plist"
)

// This file holds two small supervisors that apply the generated service
// files the way systemd and launchd document it, so the exit-code contract
// is tested against the files kache writes, not against a copy of the
// rules. They run the command the file names with the environment it sets.

// exitStatus is how one run ended.
type exitStatus struct {
	Started  time.Time      // when the run was spawned
	Code     int            // exit code, if !Signaled
	Signaled bool           // died of a signal
	Signal   syscall.Signal // which
}

func (e exitStatus) String() string {
	if e.Signaled {
		return e.Signal.String()
	}
	return strconv.Itoa(e.Code)
}

// startProcess runs argv with env, waits, and reports how it ended.
func startProcess(ctx context.Context, argv, env []string) (exitStatus, error) {
	started := time.Now()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return exitStatus{}, err
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return exitStatus{Started: started, Signaled: true, Signal: ws.Signal()}, nil
	}
	return exitStatus{Started: started, Code: ws.ExitStatus()}, nil
}

// systemdRules are the restart settings of a service unit.
type systemdRules struct {
	Argv                    []string
	Env                     []string
	Restart                 string
	RestartSec              time.Duration
	Force, Prevent, Success []string // exit codes or signal names
	Burst                   int
	Interval                time.Duration
}

// parseUnit reads the settings systemdRules needs, with systemd's
// defaults for those absent (Restart=no, RestartSec=100ms, 5 starts in 10 s).
func parseUnit(text string) (systemdRules, error) {
	r := systemdRules{Restart: "no", RestartSec: 100 * time.Millisecond, Burst: 5, Interval: 10 * time.Second}
	var err error
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		if err = r.set(key, val); err != nil {
			return r, fmt.Errorf("%s=%s: %w", key, val, err)
		}
	}
	if len(r.Argv) == 0 {
		return r, errors.New("no ExecStart=")
	}
	return r, nil
}

func (r *systemdRules) set(key, val string) error {
	var err error
	switch key {
	case "ExecStart":
		r.Argv, err = unitWords(val)
	case "Environment":
		var w []string
		w, err = unitWords(val)
		r.Env = append(r.Env, w...)
	case "Restart":
		r.Restart = val
	case "RestartSec":
		r.RestartSec, err = time.ParseDuration(val)
	case "StartLimitIntervalSec":
		r.Interval, err = time.ParseDuration(val)
	case "StartLimitBurst":
		r.Burst, err = strconv.Atoi(val)
	case "RestartForceExitStatus":
		r.Force = append(r.Force, strings.Fields(val)...)
	case "RestartPreventExitStatus":
		r.Prevent = append(r.Prevent, strings.Fields(val)...)
	case "SuccessExitStatus":
		r.Success = append(r.Success, strings.Fields(val)...)
	}
	return err
}

// unitWords splits a command line as systemd does for ExecStart= and
// Environment=: words separated by spaces, double quotes with C escapes for
// \\ and \", and %% for a percent sign. Other escapes are an error here.
func unitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+1 >= len(s) || s[i+1] != '%' {
				return nil, fmt.Errorf("unsupported specifier in %q", s)
			}
			cur.WriteByte('%')
			i++
		case c == '\\':
			if i+1 >= len(s) || (s[i+1] != '\\' && s[i+1] != '"') {
				return nil, fmt.Errorf("unsupported escape in %q", s)
			}
			cur.WriteByte(s[i+1])
			i++
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			continue
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// matches reports whether st is in a list of exit codes and signal names.
func matches(list []string, st exitStatus) bool {
	for _, v := range list {
		if st.Signaled && strings.TrimPrefix(v, "SIG") == strings.TrimPrefix(signalName(st.Signal), "SIG") {
			return true
		}
		if !st.Signaled && v == strconv.Itoa(st.Code) {
			return true
		}
	}
	return false
}

func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL",
		syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP", syscall.SIGPIPE: "SIGPIPE", syscall.SIGABRT: "SIGABRT"}
	return names[s]
}

// clean is systemd's is_clean_exit for a daemon: code 0, one of the signals
// a daemon is expected to die of (HUP, INT, TERM, PIPE), or a listed
// SuccessExitStatus.
func (r systemdRules) clean(st exitStatus) bool {
	if st.Signaled {
		switch st.Signal {
		case syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE:
			return true
		}
		return matches(r.Success, st)
	}
	return st.Code == 0 || matches(r.Success, st)
}

// shallRestart follows systemd's service_shall_restart: the prevent list
// wins, then the force list, then Restart=.
func (r systemdRules) shallRestart(st exitStatus) bool {
	if matches(r.Prevent, st) {
		return false
	}
	if matches(r.Force, st) {
		return true
	}
	switch r.Restart {
	case "always":
		return true
	case "on-success":
		return r.clean(st)
	case "on-failure":
		return !r.clean(st)
	case "on-abnormal", "on-abort":
		return st.Signaled && !r.clean(st)
	}
	return false
}

// supervise starts the unit's command and restarts it as the rules say,
// refusing a start beyond StartLimitBurst within StartLimitIntervalSec. It
// returns every exit, in order. maxRuns guards against a runaway test.
func (r systemdRules) supervise(ctx context.Context, extraEnv []string, maxRuns int) ([]exitStatus, error) {
	var exits []exitStatus
	var starts []time.Time
	for len(exits) < maxRuns {
		if !r.mayStart(&starts) {
			return exits, nil // start-limit-hit: the unit fails and stays down
		}
		st, err := startProcess(ctx, r.Argv, append(append(baseEnv(), r.Env...), extraEnv...))
		if err != nil {
			return exits, err
		}
		exits = append(exits, st)
		if !r.shallRestart(st) {
			return exits, nil
		}
		if err := pause(ctx, r.RestartSec); err != nil {
			return exits, err
		}
	}
	return exits, fmt.Errorf("still restarting after %d runs", maxRuns)
}

// mayStart applies the start rate limit and records this start.
func (r systemdRules) mayStart(starts *[]time.Time) bool {
	now := time.Now()
	kept := (*starts)[:0]
	for _, t := range *starts {
		if now.Sub(t) < r.Interval {
			kept = append(kept, t)
		}
	}
	*starts = kept
	if len(kept) >= r.Burst {
		return false
	}
	*starts = append(*starts, now)
	return true
}

// pause waits d, the restart delay the service file asks for.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// baseEnv is the little a user service manager passes on by itself.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

// superviseLaunchd runs the plist's ProgramArguments with its
// EnvironmentVariables and applies KeepAlive and ThrottleInterval as
// launchd.plist(5) documents them: with SuccessfulExit false the job is
// restarted after a non-zero exit or a signal, never after exit 0; a job
// is not respawned sooner than ThrottleInterval after its last spawn.
func superviseLaunchd(ctx context.Context, data []byte, extraEnv []string, maxRuns int) ([]exitStatus, error) {
	var job launchdJob
	if _, err := plist.Unmarshal(data, &job); err != nil {
		return nil, err
	}
	env := baseEnv()
	for k, v := range job.EnvironmentVariables {
		env = append(env, k+"="+v)
	}
	env = append(env, extraEnv...)
	var exits []exitStatus
	for len(exits) < maxRuns {
		st, err := startProcess(ctx, job.ProgramArguments, env)
		if err != nil {
			return exits, err
		}
		exits = append(exits, st)
		success := !st.Signaled && st.Code == 0
		if success != job.KeepAlive.SuccessfulExit {
			return exits, nil
		}
		throttle := time.Duration(job.ThrottleInterval) * time.Second
		if err := pause(ctx, time.Until(st.Started.Add(throttle))); err != nil {
			return exits, err
		}
	}
	return exits, fmt.Errorf("still restarting after %d runs", maxRuns)
}
