package cli_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/service"
)

// The service manager's side of the lifecycle, end to end with the real
// binary: a small supervisor that applies the restart rules of the
// kache.service that `kache daemon install` generates, and socket
// activation as systemd's kache.socket does it.

// unitRules are the settings of a service unit that decide whether its
// process is restarted, as systemd.service(5) defines them.
type unitRules struct {
	argv, env               []string
	restart                 string
	restartSec              time.Duration
	notifyAccess            string   // "" when Type= is not notify
	force, prevent, success []string // exit codes
}

// parseUnitRules reads the rules from a unit file's text, with systemd's
// defaults (Restart=no, RestartSec=100ms) for those absent.
func parseUnitRules(t *testing.T, text string) unitRules {
	t.Helper()
	u := unitRules{restart: "no", restartSec: 100 * time.Millisecond}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case "ExecStart":
			u.argv = unitWords(t, v)
		case "Environment":
			u.env = append(u.env, unitWords(t, v)...)
		case "Restart":
			u.restart = v
		case "NotifyAccess":
			u.notifyAccess = v
		case "RestartSec":
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("RestartSec=%s: %v", v, err)
			}
			u.restartSec = d
		case "RestartForceExitStatus":
			u.force = append(u.force, strings.Fields(v)...)
		case "RestartPreventExitStatus":
			u.prevent = append(u.prevent, strings.Fields(v)...)
		case "SuccessExitStatus":
			u.success = append(u.success, strings.Fields(v)...)
		}
	}
	if len(u.argv) == 0 {
		t.Fatalf("no ExecStart= in\n%s", text)
	}
	return u
}

// unitWords splits an ExecStart= or Environment= value: space-separated
// words, double quotes, \\ and \" escapes, %% for a percent sign.
func unitWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case (c == '\\' || c == '%') && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted, in = !quoted, true
		case c == ' ' && !quoted:
			if in {
				words, in = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// shallRestart is systemd's service_shall_restart for an exit code: the
// prevent list wins, then the force list, then Restart= on a clean or an
// unclean exit (clean: 0 or a SuccessExitStatus).
func (u unitRules) shallRestart(code int) bool {
	c := strconv.Itoa(code)
	switch {
	case slices.Contains(u.prevent, c):
		return false
	case slices.Contains(u.force, c):
		return true
	}
	clean := code == 0 || slices.Contains(u.success, c)
	switch u.restart {
	case "always":
		return true
	case "on-success":
		return clean
	case "on-failure":
		return !clean
	}
	return false
}

// unitSupervisor runs a unit's command and restarts it as its rules say,
// like a service manager; it is the parent of every run.
type unitSupervisor struct {
	mu       sync.Mutex
	exits    []int
	stderr   bytes.Buffer // of the last run
	done     chan struct{}
	notify   *notifyStandin
	exitCode func() int // the exit code of a main process that is not our child
}

// supervise starts the supervisor; it stops (killing its child) when the
// test ends. At most five runs, so a broken contract cannot loop.
func supervise(t *testing.T, u unitRules, env []string, exitCode func() int) *unitSupervisor {
	s := &unitSupervisor{done: make(chan struct{}), exitCode: exitCode}
	if u.notifyAccess != "" {
		s.notify = startNotify(t, u.notifyAccess)
		env = append(env, "NOTIFY_SOCKET="+s.notify.path)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	go s.loop(ctx, u, append(env, u.env...))
	return s
}

func (s *unitSupervisor) loop(ctx context.Context, u unitRules, env []string) {
	defer close(s.done)
	for range 5 {
		var errb bytes.Buffer
		cmd := exec.CommandContext(ctx, u.argv[0], u.argv[1:]...)
		cmd.Env, cmd.Stderr = env, &errb
		if err := cmd.Start(); err != nil {
			return
		}
		if s.notify != nil {
			s.notify.started(cmd.Process.Pid)
		}
		_ = cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		if main := s.mainPid(); main != 0 && main != cmd.Process.Pid {
			// MAINPID= moved the service to another process: the one we
			// started leaving is not the service's exit. Its exit is.
			if !waitGone(main, ctx.Done()) {
				return
			}
			code = s.exitCode()
		}
		s.mu.Lock()
		s.exits, s.stderr = append(s.exits, code), errb
		s.mu.Unlock()
		if ctx.Err() != nil || !u.shallRestart(code) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(u.restartSec):
		}
	}
}

// mainPid is the process the service's exit is, as MAINPID= left it.
func (s *unitSupervisor) mainPid() int {
	if s.notify == nil {
		return 0
	}
	return s.notify.mainPid()
}

// codes is every exit so far, in order.
func (s *unitSupervisor) codes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exits)
}

// finished waits until the supervisor has given up restarting, and
// returns the exits.
func (s *unitSupervisor) finished(t *testing.T, timeout time.Duration) []int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("the supervisor still runs the unit after %s (exits so far %v)", timeout, s.codes())
	}
	return s.codes()
}

// serviceUnit renders the kache.service `kache daemon install` would write
// for this rig, carrying its socket, cache dir and any extra KACHE_* vars.
func (r *rig) serviceUnit(bin string, extra map[string]string) unitRules {
	env := map[string]string{"KACHE_SOCKET_PATH": r.p.Socket, "KACHE_CACHE_DIR": r.p.CacheDir}
	for k, v := range extra {
		env[k] = v
	}
	svc, _ := service.SystemdUnits(service.Options{Exe: bin, Socket: r.p.Socket, Env: env, Home: r.dir})
	return parseUnitRules(r.t, svc)
}

// managerEnv is what a user service manager gives a unit by itself: no
// KACHE_* variables, only those the unit sets.
func (r *rig) managerEnv() []string {
	return testenv.Environ(map[string]string{"HOME": filepath.Join(r.dir, "home"),
		"XDG_CONFIG_HOME": filepath.Join(r.dir, "config"), "XDG_CACHE_HOME": filepath.Join(r.dir, "xdg")})
}

// TestLifecycleE2EServiceContract: under a supervisor applying the
// generated unit (restart rules, NotifyAccess= and MAINPID=), an upgrade is
// handed over: the manager follows the successor as the service's main
// process and restarts nothing; a clean stop, an idle exit (0) and a config
// error (78) are not restarted.
func TestLifecycleE2EServiceContract(t *testing.T) {
	t.Parallel()
	t.Run("an upgrade is handed over and the manager follows the successor", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		bin := r.copyBin("bin/kache", time.Now().Add(-time.Hour))
		sup := supervise(t, r.serviceUnit(bin, nil), r.managerEnv(), r.exitCode)
		first := r.waitDaemon("first run", anyDaemon)
		newer := r.copyBin("bin/.kache.new", time.Now())
		newEpoch := install.Epoch(newer)
		if err := os.Rename(newer, bin); err != nil {
			t.Fatal(err)
		}
		next := r.waitDaemon("a new pid answering with the new epoch", func(st *rpc.Status) bool {
			return st.Pid != first.Pid && st.Epoch == newEpoch
		})
		lcWait(t, 10*time.Second, "the manager to follow the successor", func() bool { return sup.mainPid() == next.Pid })
		lcWait(t, 10*time.Second, "the old daemon to exit", func() bool { return !pidAlive(first.Pid) || zombie(first.Pid) })
		if got := sup.codes(); len(got) != 0 {
			t.Fatalf("exits %v during the hand-over, want none: the service never stopped", got)
		}
		r.ok(bin, "daemon", "stop")
		if got := sup.finished(t, 30*time.Second); !slices.Equal(got, []int{0}) {
			t.Fatalf("exits %v, want [0]: `daemon stop` of the successor must not be restarted", got)
		}
		if moves := sup.notify.mainMoves(); !slices.Equal(moves, []int{next.Pid}) {
			t.Errorf("MAINPID moves %v, want [%d]", moves, next.Pid)
		}
	})
	for _, c := range []struct {
		name, config string
		code         int
	}{
		{"idle exit is not restarted", "daemon_idle_timeout_secs = 1\n", 0},
		{"config error is not restarted", "daemon_idle_timeout_secs = \"soon\"\n", 78},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			bin := r.copyBin("bin/kache", time.Now())
			conf := filepath.Join(r.dir, "config.toml")
			if err := os.WriteFile(conf, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			sup := supervise(t, r.serviceUnit(bin, map[string]string{"KACHE_CONFIG": conf}), r.managerEnv(), r.exitCode)
			if got := sup.finished(t, 30*time.Second); !slices.Equal(got, []int{c.code}) {
				t.Fatalf("exits %v, want [%d] and no restart; stderr: %s", got, c.code, sup.stderr.String())
			}
		})
	}
}

// TestLifecycleE2ESocketActivation: the test holds the listening socket as
// systemd's kache.socket would and passes it as fd 3. The daemon adopts it,
// and after an idle exit the socket stays: the next client is accepted by
// the listener still holding it (in systemd, that starts the daemon).
func TestLifecycleE2ESocketActivation(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	bin := r.copyBin("bin/kache", time.Now())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: r.p.Socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := r.foreground([]string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" daemon run`, bin},
		[]*os.File{f}, "KACHE_DAEMON_IDLE_TIMEOUT=1")
	if st := r.waitDaemon("activated daemon up", anyDaemon); st.Pid != d.cmd.Process.Pid || !st.SocketActive {
		t.Fatalf("status %+v: want pid %d and socket_activated", st, d.cmd.Process.Pid)
	}
	if s := r.statusJSON(bin); s.Daemon == nil || !s.Daemon.SocketActive {
		t.Fatalf("status --json does not say socket_activated: %+v", s.Daemon)
	}
	if code := d.wait(t, 20*time.Second); code != 0 || r.lastExit().Reason != "idle" {
		t.Fatalf("exit %d (%s), want an idle exit 0; stderr:\n%s", code, r.lastExit().Reason, d.stderr.String())
	}
	if fi, err := os.Lstat(r.p.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the activated socket file was removed at the idle exit: %v", err)
	}
	client, err := net.DialTimeout("unix", r.p.Socket, 2*time.Second)
	if err != nil {
		t.Fatalf("a client after the idle exit: %v", err)
	}
	defer client.Close()
	_ = ln.SetDeadline(time.Now().Add(5 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("the socket's owner did not get the client: %v", err)
	}
	conn.Close()
}

// exitCode is the code the last daemon exited with, from its exit record:
// a manager following a MAINPID it did not start learns it from the kernel;
// the test, which is not its parent, from the record.
func (r *rig) exitCode() int {
	rec, err := statefile.ReadExit(r.p.ExitFile())
	if err != nil {
		return -1
	}
	return rec.Code
}
