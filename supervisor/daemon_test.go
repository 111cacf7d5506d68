package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/transitions"
	"github.com/kunobi-ninja/kache/uploader"
)

// testEpoch is the build epoch the in-process daemons claim.
const testEpoch = int64(1_000_000)

// transition is one "state changed" line of the daemon's log.
type transition struct{ from, to, event, cause string }

// transitionLog is a slog handler that keeps the daemon's state changes.
type transitionLog struct {
	mu  sync.Mutex
	got []transition
}

func (l *transitionLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *transitionLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *transitionLog) WithGroup(string) slog.Handler            { return l }

func (l *transitionLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "state changed" {
		return nil
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, transition{attrs["from"], attrs["to"], attrs["event"], attrs["cause"]})
	return nil
}

// path is the sequence of states, from the first one left.
func (l *transitionLog) path() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return ""
	}
	p := []string{l.got[0].from}
	for _, t := range l.got {
		p = append(p, t.to+"("+t.event+")")
	}
	return strings.Join(p, " -> ")
}

// gatedRemote is a real directory remote whose Put waits for the gate to
// open, so a test can hold an upload in flight for as long as it needs.
type gatedRemote struct {
	*uploader.DirRemote
	entered chan string   // receives the key of every Put that starts
	gate    chan struct{} // closed to let Puts through
	once    sync.Once
}

func (g *gatedRemote) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := g.wait(ctx, key); err != nil {
		return err
	}
	return g.DirRemote.Put(ctx, key, r, size)
}

// PutNew is the one request of a remote format v2 upload.
func (g *gatedRemote) PutNew(ctx context.Context, key string, body io.Reader, size int64, sum string, meta map[string]string) error {
	if err := g.wait(ctx, key); err != nil {
		return err
	}
	return g.DirRemote.PutNew(ctx, key, body, size, sum, meta)
}

// wait announces key and holds it at the gate.
func (g *gatedRemote) wait(ctx context.Context, key string) error {
	select {
	case g.entered <- key:
	default:
	}
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedRemote) open() { g.once.Do(func() { close(g.gate) }) }

// rig is one in-process daemon on a short socket in a temp dir.
type rig struct {
	t       testing.TB
	o       Options
	log     *transitionLog
	remote  *gatedRemote
	sigs    chan os.Signal
	done    chan error
	stopped time.Time // when Run returned
	client  *rpc.Client

	finished bool // wait has Run's result
	result   error
}

// newRig prepares a daemon with a gated directory remote; tweak adjusts
// the options before start.
func newRig(t testing.TB, tweak func(*Options)) *rig {
	t.Helper()
	dir := testenv.SockDir(t)
	remoteDir := filepath.Join(t.TempDir(), "remote")
	dr, err := uploader.NewDir(remoteDir)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, log: &transitionLog{}, sigs: make(chan os.Signal, 2), done: make(chan error, 1),
		remote: &gatedRemote{DirRemote: dr, entered: make(chan string, 16), gate: make(chan struct{})}}
	r.o = Options{
		Paths:   config.Paths{CacheDir: filepath.Join(t.TempDir(), "cache"), Socket: filepath.Join(dir, "d.sock")},
		Config:  config.Config{DrainTimeout: 10 * time.Second, RemoteDir: remoteDir, S3: config.S3{Concurrency: 2}},
		Version: "test", Epoch: testEpoch, Log: slog.New(r.log), Signals: r.sigs,
		Remote: func(context.Context, config.Config) (uploader.Remote, error) { return r.remote, nil },
	}
	if tweak != nil {
		tweak(&r.o)
	}
	r.client = &rpc.Client{Socket: r.o.Paths.Socket, Epoch: testEpoch, CallTimeout: 5 * time.Second}
	t.Cleanup(func() {
		r.client.Close()
		r.remote.open()
		for range 2 {
			select {
			case r.sigs <- syscall.SIGTERM:
			default:
			}
		}
		r.wait(15 * time.Second)
		waitPoolGone(t)
	})
	return r
}

// waitPoolGone waits until no upload pool goroutine runs. After a forced
// exit, Run returns while the drain it cut short is still unwinding in the
// background (the process would exit there); it must finish before the
// test's temp dirs are removed under it.
func waitPoolGone(t testing.TB) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, "the upload pool's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "uploader.(*Pool)")
	})
}

// start runs the daemon in a goroutine and waits until it answers running.
func (r *rig) start() *rig {
	r.t.Helper()
	go func() {
		err := Run(context.Background(), r.o)
		r.stopped = time.Now()
		r.done <- err
	}()
	r.waitState(states.Running)
	return r
}

// touch sends one request that counts as activity (stats; status only
// observes), over a fresh connection closed at once.
func (r *rig) touch() {
	r.t.Helper()
	c := &rpc.Client{Socket: r.o.Paths.Socket, CallTimeout: 5 * time.Second}
	defer c.Close()
	if _, err := c.Stats(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// status asks over a fresh connection that is closed at once: an open
// connection holds the idle exit off.
func (r *rig) status() (*rpc.Status, error) {
	c := &rpc.Client{Socket: r.o.Paths.Socket, CallTimeout: 5 * time.Second}
	defer c.Close()
	return c.Status(context.Background())
}

func (r *rig) waitState(want states.State) *rpc.Status {
	r.t.Helper()
	var st *rpc.Status
	testenv.WaitFor(r.t, 10*time.Second, "state "+string(want), func() bool {
		s, err := r.status()
		st = s
		return err == nil && s.State == string(want)
	})
	return st
}

// wait returns Run's result, failing the test if it takes longer than
// timeout. Later calls return the same result at once.
func (r *rig) wait(timeout time.Duration) error {
	r.t.Helper()
	if r.finished {
		return r.result
	}
	select {
	case r.result = <-r.done:
		r.finished = true
	case <-time.After(timeout):
		r.t.Fatalf("Run did not return within %s (transitions: %s)", timeout, r.log.path())
	}
	return r.result
}

// upload spools an intent for a fresh file and hands it to the daemon, then
// waits until its Put has started (and is held at the gate).
func (r *rig) upload(key string) {
	r.t.Helper()
	src := filepath.Join(r.t.TempDir(), key)
	if err := os.WriteFile(src, []byte("entry "+key), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := spool.WriteIntent(r.o.Paths.SpoolDir(), uploader.Entry{Key: key, Path: src}, 0); err != nil {
		r.t.Fatal(err)
	}
	// Queued may be 0: the spool watcher can take the intent first.
	if res, err := r.client.Upload(context.Background(), []rpc.UploadEntry{{Key: key, Path: src}}); err != nil {
		r.t.Fatalf("upload %s: %+v, %v", key, res, err)
	}
	select {
	case <-r.remote.entered:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("upload of %s never reached the remote", key)
	}
}

func (r *rig) exitRecord() statefile.ExitRecord {
	r.t.Helper()
	rec, err := statefile.ReadExit(r.o.Paths.ExitFile())
	if err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// checkGone asserts that a stopped daemon released everything it held.
func (r *rig) checkGone() {
	r.t.Helper()
	p := r.o.Paths
	if runlock.LockHeld(p.RunLock()) {
		r.t.Error("run lock still held after Run returned")
	}
	for _, f := range []string{p.Socket, p.StateFile()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			r.t.Errorf("%s left behind after a clean exit (stat: %v)", f, err)
		}
	}
}

func TestDaemonCallbackKeysAreReal(t *testing.T) {
	d, err := newDaemon(Options{Paths: config.Paths{CacheDir: t.TempDir(), Socket: filepath.Join(t.TempDir(), "d.sock")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := transitions.CheckDaemonCallbacks(d.callbacks()); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonStatesThroughShutdown drives a daemon from start to stop over
// its socket and sees every state it passes through: running in status and
// the state file, draining in status while an upload is held in flight,
// then stopped, in that order in the log.
func TestDaemonStatesThroughShutdown(t *testing.T) {
	r := newRig(t, nil).start()
	st := r.waitState(states.Running)
	if st.Pid != os.Getpid() || st.Epoch != testEpoch || st.Version != "test" || !strings.HasPrefix(st.StateCause, "listening on ") {
		t.Errorf("status = %+v", st)
	}
	if st.Remote != r.remote.String() {
		t.Errorf("status remote %q, want %q", st.Remote, r.remote.String())
	}
	// The state file mirrors the state just after status shows it.
	testenv.WaitFor(t, 5*time.Second, "state file to say running", func() bool {
		rec, err := statefile.ReadState(r.o.Paths.StateFile())
		return err == nil && rec.State == string(states.Running) && rec.Pid == os.Getpid()
	})

	r.upload("held-1")
	res, err := r.client.Shutdown(context.Background(), "test asked")
	if err != nil || res.Pending != 1 {
		t.Fatalf("shutdown: %+v, %v; want 1 pending", res, err)
	}
	st = r.waitState(states.Draining)
	if st.StateCause != "test asked" {
		t.Errorf("draining cause %q, want the shutdown reason", st.StateCause)
	}
	testenv.WaitFor(t, 5*time.Second, "state file to say draining", func() bool {
		rec, err := statefile.ReadState(r.o.Paths.StateFile())
		return err == nil && rec.State == string(states.Draining) && rec.Cause == "test asked"
	})
	r.remote.open()
	if err := r.wait(15 * time.Second); err != nil {
		t.Fatalf("Run after shutdown = %v, want nil", err)
	}
	want := "starting -> running(ready) -> draining(stop_requested) -> stopped(drain_done)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if rec := r.exitRecord(); rec.Reason != "stop" || rec.Drained != 1 || rec.Left != 0 || rec.Pid != os.Getpid() {
		t.Errorf("exit record = %+v, want stop, drained 1, left 0", rec)
	}
	r.checkGone()
}

// TestDaemonSecondRunRefused: while one daemon runs, a second Run on the
// same socket returns ErrAlreadyRunning at once and disturbs nothing.
func TestDaemonSecondRunRefused(t *testing.T) {
	r := newRig(t, nil).start()
	start := time.Now()
	err := Run(context.Background(), r.o)
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Run took %s to refuse", d)
	}
	r.waitState(states.Running)
}

// TestDaemonSignalDrains: the first signal drains and Run returns nil.
func TestDaemonSignalDrains(t *testing.T) {
	r := newRig(t, nil).start()
	r.sigs <- syscall.SIGTERM
	if err := r.wait(10 * time.Second); err != nil {
		t.Fatalf("Run after SIGTERM = %v, want nil", err)
	}
	want := "starting -> running(ready) -> draining(signaled) -> stopped(drain_done)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if rec := r.exitRecord(); rec.Reason != "stop" || rec.Message == "" {
		t.Errorf("exit record = %+v", rec)
	}
	r.checkGone()
}

// TestDaemonSecondSignalForces: a signal during a drain that an upload
// holds up ends it at once with ErrForced, leaving the upload in the spool.
func TestDaemonSecondSignalForces(t *testing.T) {
	r := newRig(t, nil).start()
	r.upload("held-2")
	r.sigs <- syscall.SIGTERM
	st := r.waitState(states.Draining)
	if st.StateCause != "signal terminated" {
		t.Errorf("draining cause %q", st.StateCause)
	}
	r.sigs <- syscall.SIGINT
	if err := r.wait(5 * time.Second); !errors.Is(err, ErrForced) {
		t.Fatalf("Run after a second signal = %v, want ErrForced", err)
	}
	want := "starting -> running(ready) -> draining(signaled) -> stopped(forced)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if rec := r.exitRecord(); rec.Reason != "forced" || rec.Left != 1 {
		t.Errorf("exit record = %+v, want forced with 1 left", rec)
	}
	if _, err := os.Stat(filepath.Join(r.o.Paths.SpoolDir(), "held-2.json")); err != nil {
		t.Errorf("the held upload's intent is not in the spool: %v", err)
	}
	if runlock.LockHeld(r.o.Paths.RunLock()) {
		t.Error("run lock still held after a forced exit")
	}
}

// TestDaemonClientNewer: a request from a newer client binary is answered,
// then the daemon goes epoch-stale and Run returns ErrEpochStale. Status
// only reads, so it never triggers it.
func TestDaemonClientNewer(t *testing.T) {
	r := newRig(t, nil).start()
	newer := &rpc.Client{Socket: r.o.Paths.Socket, Epoch: testEpoch + 1}
	defer newer.Close()
	if _, err := newer.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.waitState(states.Running)
	resp, err := newer.Call(context.Background(), &rpc.Request{Op: rpc.OpStats})
	if err != nil || resp.Epoch == nil || resp.Epoch.Relation != epoch.ClientNewer {
		t.Fatalf("stats from a newer client: %+v, %v", resp, err)
	}
	newer.Close()
	if err := r.wait(10 * time.Second); !errors.Is(err, ErrEpochStale) {
		t.Fatalf("Run = %v, want ErrEpochStale", err)
	}
	want := "starting -> running(ready) -> handing_over(client_newer) -> epoch_stale(handover_unavailable) -> stopped(drain_done)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if rec := r.exitRecord(); rec.Reason != "epoch_stale" {
		t.Errorf("exit record = %+v, want epoch_stale", rec)
	}
}

// TestDaemonIdleExit: with nothing to do, Run returns nil about one idle
// timeout after the last request (no sooner, and within a second), and the
// exit record says idle.
func TestDaemonIdleExit(t *testing.T) {
	const timeout = 300 * time.Millisecond
	r := newRig(t, func(o *Options) { o.Config.IdleTimeout = timeout })
	r.start()
	last := time.Now()
	r.touch() // the last request
	if err := r.wait(10 * time.Second); err != nil {
		t.Fatalf("Run after idling = %v, want nil", err)
	}
	if idle := r.stopped.Sub(last); idle < timeout || idle > timeout+idleSlack {
		t.Errorf("exited %s after the last request, want %s to %s", idle, timeout, timeout+idleSlack)
	}
	want := "starting -> running(ready) -> idle_exiting(idle_timeout) -> stopped(drain_done)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if rec := r.exitRecord(); rec.Reason != "idle" {
		t.Errorf("exit record reason %q, want idle", rec.Reason)
	}
	r.checkGone()
}

// TestDaemonIdleHeldByUpload: an upload in flight holds the idle exit off
// for many timeouts; once it lands, the daemon idles out a timeout later.
func TestDaemonIdleHeldByUpload(t *testing.T) {
	const timeout = 200 * time.Millisecond
	r := newRig(t, func(o *Options) { o.Config.IdleTimeout = timeout })
	r.start()
	r.upload("held-3")
	r.client.Close()
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v while an upload was in flight", err)
	case <-time.After(5 * timeout):
	}
	st := r.waitState(states.Running)
	if st.IdleDeadline != nil {
		t.Errorf("status shows idle deadline %s while an upload is in flight", st.IdleDeadline)
	}
	released := time.Now()
	r.remote.open()
	if err := r.wait(10 * time.Second); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if idle := r.stopped.Sub(released); idle < timeout || idle > timeout+idleSlack {
		t.Errorf("exited %s after the upload was released, want %s to %s", idle, timeout, timeout+idleSlack)
	}
	if rec := r.exitRecord(); rec.Reason != "idle" {
		t.Errorf("exit record reason %q, want idle", rec.Reason)
	}
}

// TestDaemonContextCancelled: cancelling Run's context is a clean stop.
func TestDaemonContextCancelled(t *testing.T) {
	r := newRig(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- Run(ctx, r.o) }()
	r.waitState(states.Running)
	cancel()
	if err := r.wait(10 * time.Second); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	r.checkGone()
}

// An intent that reaches the spool but whose client never told the daemon
// (its call failed, or it was killed between its write and its call) is
// uploaded by the running daemon, not left for the next one; a spool file
// that is a FIFO does not stop it.
func TestDaemonUploadsIntentNobodyAnnounced(t *testing.T) {
	r := newRig(t, nil).start()
	r.remote.open()
	if err := syscall.Mkfifo(spool.File(r.o.Paths.SpoolDir(), "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "art")
	if err := os.WriteFile(src, []byte("unannounced"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := spool.WriteIntent(r.o.Paths.SpoolDir(), spool.Entry{Key: "quiet", Path: src}, 0); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the unannounced intent uploaded", func() bool {
		_, err := os.Lstat(spool.File(r.o.Paths.SpoolDir(), "quiet"))
		return errors.Is(err, fs.ErrNotExist)
	})
	if ok, err := uploader.HasEntry(context.Background(), r.remote, "quiet"); !ok || err != nil {
		t.Fatalf("remote has quiet = %v, %v", ok, err)
	}
	st, err := r.status()
	if err != nil || st.State != string(states.Running) {
		t.Fatalf("status = %+v, %v; want running", st, err)
	}
}

// A spool of many intents does not delay readiness: the daemon answers
// while it is still replaying them.
func TestDaemonReadyBeforeReplay(t *testing.T) {
	r := newRig(t, nil)
	src := filepath.Join(t.TempDir(), "art")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	es := make([]spool.Entry, 1000)
	for i := range es {
		es[i] = spool.Entry{Key: fmt.Sprintf("k%05d", i), Path: src}
	}
	if _, err := spool.WriteIntents(r.o.Paths.SpoolDir(), es, 0); err != nil {
		t.Fatal(err)
	}
	r.start() // the gate holds every upload: replay cannot finish before ready
	st, err := r.status()
	if err != nil || st.State != string(states.Running) {
		t.Fatalf("status = %+v, %v; want running while replaying", st, err)
	}
	r.remote.open()
	testenv.WaitFor(t, 60*time.Second, "all 1000 replayed and uploaded", func() bool {
		return spool.Count(r.o.Paths.SpoolDir()) == 0
	})
}

// Status (a monitor refreshing every second) only observes: it does not
// hold an idle daemon off its exit.
func TestDaemonIdleNotHeldByStatus(t *testing.T) {
	const timeout = 400 * time.Millisecond
	r := newRig(t, func(o *Options) { o.Config.IdleTimeout = timeout })
	r.start()
	r.touch()
	began := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for time.Since(began) < 20*timeout {
			if _, err := r.status(); err != nil {
				return // gone: it exited
			}
			time.Sleep(timeout / 8)
		}
	}()
	if err := r.wait(10 * time.Second); err != nil {
		t.Fatalf("Run = %v, want an idle exit", err)
	}
	<-done
	if idle := r.stopped.Sub(began); idle > timeout+idleSlack {
		t.Errorf("exited %s after the last real request while status polled, want about %s", idle, timeout)
	}
	if rec := r.exitRecord(); rec.Reason != "idle" {
		t.Errorf("exit reason %q, want idle", rec.Reason)
	}
}

// TestShutdownReasonBounded (issue 16, defect 9): a 5 MB shutdown reason
// is clipped before it reaches the state, the state file and the history.
func TestShutdownReasonBounded(t *testing.T) {
	r := newRig(t, nil).start()
	r.waitState(states.Running)
	r.upload("held-1") // the gated remote holds the drain, so draining is seen
	if _, err := r.client.Shutdown(context.Background(), strings.Repeat("r", 5<<20)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	st := r.waitState(states.Draining)
	if len(st.StateCause) > maxReason+len("…") || !strings.HasPrefix(st.StateCause, "rrr") {
		t.Errorf("draining cause is %d bytes, want at most %d", len(st.StateCause), maxReason)
	}
	r.remote.open()
	if err := r.wait(15 * time.Second); err != nil {
		t.Fatalf("Run after shutdown = %v, want nil", err)
	}
	if fi, err := os.Stat(history.File(r.o.Paths.CacheDir)); err != nil || fi.Size() > 16<<10 {
		t.Errorf("history file: %v, %d bytes; want a few records", err, fi.Size())
	}
}
