package supervisor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/spawn"
	"github.com/kunobi-ninja/kache/states"
)

// The hand-over (docs/lifecycle.md): a daemon whose binary was replaced
// starts the new binary as its successor, passes it the listening socket
// and the run lock as inherited descriptors, and waits on the spawn
// readiness pipe. The successor serves from the moment it is ready; the old
// daemon then stops accepting and drains only its in-flight uploads, which
// it holds claims on (uploader/claim.go). The socket never stops listening
// (one of the two processes always holds it), so no client is refused, and
// the run lock is one open file description shared by both, so it is held
// without a gap and by nobody else.

// HandoverEnv names the descriptors a successor inherits:
// "listen=4,lock=5,activated=0,from=<pid>".
const HandoverEnv = "KACHE_HANDOVER"

// successorReadyTimeout bounds the wait for a successor's readiness; past
// it the successor is stopped and the old daemon keeps serving.
const successorReadyTimeout = 10 * time.Second

// Retry backoff after a failed hand-over.
const (
	handoverRetryFirst = time.Second
	handoverRetryMax   = 5 * time.Minute
)

// handoverResult is what the hand-over goroutine reports to the loop.
type handoverResult struct {
	ev    states.Event
	cause string
	child *spawn.Child
}

// startHandover runs the hand-over outside the state machine: it decides
// whether a newer binary is at our path, starts it, and waits for its
// readiness. The loop gets the outcome on d.handoverDone.
//
// A stop while it runs cancels it (cancelHandover): a successor not yet
// ready is stopped, and the loop waits for the goroutine before the daemon
// exits, so no successor outlives a stop.
func (d *Daemon) startHandover() {
	trigger := d.trigger
	files, err := d.handoverFiles()
	ctx, cancel := context.WithCancel(context.Background())
	d.handoverCancel = cancel
	go func() {
		defer cancel()
		if err != nil {
			d.handoverDone <- handoverResult{ev: states.HandoverFailed, cause: err.Error()}
			return
		}
		defer closeAll(files)
		d.handoverDone <- d.runSuccessor(ctx, files, trigger)
	}()
}

// cancelHandover stops a hand-over in progress (the daemon is stopping).
func (d *Daemon) cancelHandover() {
	if d.handingOver && d.handoverCancel != nil {
		d.handoverCancel()
	}
}

// runSuccessor starts the binary at the daemon's path and waits for it,
// once the installation has settled: an installer copying the two
// binaries one after the other must not get the new client beside the old
// daemon started as the successor.
func (d *Daemon) runSuccessor(ctx context.Context, files []*os.File, trigger states.Event) handoverResult {
	if trigger != states.ConfigChanged {
		settleInstall(ctx, d.binaries(), installQuiet, installSettleMax)
	}
	if ctx.Err() != nil {
		return handoverResult{ev: states.HandoverFailed, cause: "hand-over cancelled: the daemon is stopping"}
	}
	if ev, why := d.successorWanted(trigger); ev != "" {
		return handoverResult{ev: ev, cause: why}
	}
	return d.spawnSuccessor(ctx, files)
}

// spawnSuccessor starts the kache-daemon at our path with files and waits
// for its readiness.
func (d *Daemon) spawnSuccessor(ctx context.Context, files []*os.File) handoverResult {
	exe := d.successorExe()
	child, err := spawn.Start(spawn.Options{Exe: exe, Args: d.successorArgs(),
		Env: d.successorEnv(), LogPath: d.o.Paths.LogFile(), Files: files})
	if err != nil {
		return handoverResult{ev: states.HandoverFailed, cause: fmt.Sprintf("start successor %s: %v", exe, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, successorReadyTimeout)
	defer cancel()
	if err := child.WaitReady(ctx, nil); err != nil {
		stopChild(child)
		return handoverResult{ev: states.HandoverFailed, cause: fmt.Sprintf("successor %s: %v", exe, err)}
	}
	return handoverResult{ev: states.SuccessorReady, child: child,
		cause: "successor pid " + strconv.Itoa(child.Process.Pid) + " serves"}
}

// successorWanted returns "" when the binary now at our own path is to be
// started as the successor, else the event that says why not: nothing
// differs (binary_same), or a newer client is another installation, or
// there is no daemon binary to start (handover_unavailable: the old path,
// drain and exit 75, after which its next command starts its own daemon).
func (d *Daemon) successorWanted(trigger states.Event) (states.Event, string) {
	if d.o.NoHandover {
		return states.HandoverUnavailable, "hand-over turned off (KACHE_NO_HANDOVER)"
	}
	now := d.o.epoch()
	if trigger == states.ConfigChanged && d.o.DaemonExe != "" {
		return "", "" // the same binary: the successor reads the new configuration
	}
	if now <= d.o.Epoch && d.buildChanged() {
		now = d.o.Epoch + 1 // another build at our path: content, not time, decides
	}
	switch {
	case trigger == states.ConfigChanged:
		return states.HandoverUnavailable, "no kache-daemon binary to start with the new configuration: restarting instead"
	case now <= d.o.Epoch && trigger == states.ClientNewer:
		return states.HandoverUnavailable, fmt.Sprintf("the newer client is another installation: the binaries at %s are not newer than this daemon (epoch %d, on disk %d)", d.installDesc(), d.o.Epoch, now)
	case now <= d.o.Epoch:
		return states.BinarySame, fmt.Sprintf("the binaries at %s are this daemon's build (epoch %d)", d.installDesc(), d.o.Epoch)
	case d.o.DaemonExe == "":
		return states.HandoverUnavailable, "no kache-daemon binary to start as the successor"
	}
	return "", ""
}

// successorExe is the kache-daemon of our installation as it is on disk
// now: beside the client (after a symlink swap, the new target's).
func (d *Daemon) successorExe() string {
	if d.o.Exe != "" {
		if p, err := install.DaemonPath(d.o.Exe); err == nil {
			return p
		}
	}
	return d.o.DaemonExe
}

// installDesc names the binaries of this daemon's installation.
func (d *Daemon) installDesc() string { return strings.Join(d.binaries(), " and ") }

// successorArgs are the successor's flags: the same installation, in the
// background (its log goes to the log file only).
func (d *Daemon) successorArgs() []string {
	args := []string{"run", "--background"}
	if d.o.Exe != "" {
		args = append(args, "--client-exe", d.o.Exe)
	}
	return args
}

// successorEnv is our environment with the hand-over descriptors named and
// whatever a service manager meant for us alone removed.
func (d *Daemon) successorEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case HandoverEnv, "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", spawn.ReadyFDEnv:
			continue
		}
		env = append(env, kv)
	}
	act := "0"
	if d.activated {
		act = "1"
	}
	return append(env, fmt.Sprintf("%s=listen=%d,lock=%d,activated=%s,from=%d",
		HandoverEnv, spawn.FirstFileFD, spawn.FirstFileFD+1, act, os.Getpid()))
}

// handoverFiles dups the listener and the run lock's descriptor for the
// child. The dups are closed once the child has its own.
//
// Not net.UnixListener.File: the *os.File it returns is put in blocking
// mode when exec reads its Fd, and O_NONBLOCK belongs to the open file
// description the listener shares, so our own accept loop would block in
// accept(2) where Close cannot interrupt it. A plain dup wrapped by
// os.NewFile stays non-blocking through exec.
func (d *Daemon) handoverFiles() ([]*os.File, error) {
	sc, ok := d.ln.(syscall.Conn)
	if d.keptLn != nil {
		sc, ok = d.keptLn, true // our listener is closed: pass the kept dup
	}
	if !ok || d.lock == nil {
		return nil, fmt.Errorf("cannot pass the listener %T", d.ln)
	}
	lf, err := dupConn(sc, "listener")
	if err != nil {
		return nil, fmt.Errorf("dup the listener for the successor: %w", err)
	}
	lock, err := dupConn(d.lock.File(), d.lock.File().Name())
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("dup the run lock for the successor: %w", err)
	}
	return []*os.File{lf, lock}, nil
}

// dupConn is a second descriptor of f's open file description (so a
// flock it holds is shared, not taken anew), as a plain *os.File.
func dupConn(f syscall.Conn, name string) (*os.File, error) {
	c, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := c.Control(func(fd uintptr) { nfd, derr = dupCloexec(int(fd)) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(nfd), name), nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// stopChild ends a successor that did not become ready (or that a stop
// overtook), and waits for it to be gone, bounded: SIGTERM, then SIGKILL.
func stopChild(c *spawn.Child) {
	_ = c.Process.Signal(sigterm)
	select {
	case <-c.Done:
		return
	case <-time.After(childStopGrace):
		_ = c.Process.Kill()
	}
	select {
	case <-c.Done:
	case <-time.After(childStopGrace):
	}
}

// childStopGrace bounds each step of stopChild.
const childStopGrace = 2 * time.Second

// onHandover applies the hand-over goroutine's outcome on the loop.
func (d *Daemon) onHandover(ctx context.Context, r handoverResult) {
	d.handingOver = false
	if d.state().state != states.HandingOver { // stopped meanwhile
		d.o.Log.Info("hand-over overtaken by a stop", "outcome", r.ev, "cause", r.cause)
		if r.child != nil {
			stopChild(r.child) // bounded; a stop stops the successor too
		}
		return
	}
	switch r.ev {
	case states.SuccessorReady:
		d.successor = r.child
		d.keepListener()
		d.releaseLineage()
		_ = Notify("MAINPID=" + strconv.Itoa(r.child.Process.Pid) + "\nSTATUS=handed over, draining")
		d.setHandoverErr("")
	case states.HandoverFailed:
		retryAt := time.Now().Add(d.retry.delay)
		d.setHandoverErr(fmt.Sprintf("%s; this daemon keeps serving and tries again at %s (or when the binary changes again): fix or reinstall the binary",
			r.cause, retryAt.Format(time.TimeOnly)))
		d.o.Log.Error("hand-over to the successor failed; this daemon keeps serving", "err", r.cause, "retry_in", d.retry.delay)
		d.retry.arm()
	}
	d.fire(ctx, event{r.ev, r.cause})
}

// gate drops an event that asks for a hand-over while a failed one waits
// for its retry: a broken binary must not be started by every request. A
// binary changed again is worth trying at once.
func (d *Daemon) gate(e event) bool {
	if !d.retry.armed() {
		return true
	}
	switch e.ev {
	case states.ClientNewer, states.ClientBuild:
		return false
	case states.BinaryChanged:
		d.retry.disarm()
	}
	return true
}

// lastHandoverErr is why the last hand-over failed, "" if it did not.
func (d *Daemon) lastHandoverErr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handoverErr
}

// setHandoverErr records (or clears) why the last hand-over failed.
func (d *Daemon) setHandoverErr(s string) {
	d.mu.Lock()
	d.handoverErr = s
	d.mu.Unlock()
}
