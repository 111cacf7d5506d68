package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/runlock"
	"github.com/kunobi-ninja/kache/internal/safesocket"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader"
)

// open takes the run lock, opens the listener, replays the spool and starts
// serving. Order matters: the stale socket is removed only under the lock.
func (d *Daemon) open(ctx context.Context) error {
	p := d.o.Paths
	if err := safesocket.PrepareDir(p.Dir()); err != nil {
		return err
	}
	for _, dir := range []string{p.CacheDir, p.SpoolDir(), p.FailedDir(), spool.SpareDir(p.SpoolDir()), p.StoreDir()} {
		if err := safesocket.PrivateDir(dir); err != nil {
			return fmt.Errorf("%w: %w", config.ErrInvalid, err)
		}
	}
	var lock *runlock.Lock
	var err error
	if d.o.Inherit != nil {
		lock, err = d.inheritedLock()
	} else {
		lock, err = d.takeRunLock(ctx)
	}
	if errors.Is(err, runlock.ErrLocked) {
		return fmt.Errorf("%w: %s is held by another process%s", ErrAlreadyRunning, p.RunLock(), statefile.HolderHint(p.StateFile()))
	}
	if errors.Is(err, runlock.ErrUnsafe) {
		return fmt.Errorf("%w: run lock: %w", config.ErrInvalid, err)
	}
	if err != nil {
		return fmt.Errorf("run lock: %w", err)
	}
	d.lock = lock
	d.restartReason = statefile.TakeRestart(p.RestartFile())
	d.writeState(d.state())
	if err := d.listen(); err != nil {
		return err
	}
	watch := d.openSpoolWatch() // before the pool's first scan: see spoolWatch
	if err := d.startPool(ctx); err != nil {
		watch.stop(false)
		return err
	}
	watch.forward(d.pool)
	d.spoolWatch = watch
	d.srv = rpc.NewServer(rpc.HandlerFunc(d.answer), rpc.ServerOptions{Log: d.o.Log})
	go func() {
		if err := d.srv.Serve(d.ln); err != nil {
			d.o.Log.Error("rpc server", "err", err)
		}
	}()
	return nil
}

// listen opens the socket, or takes the one systemd passed in.
func (d *Daemon) listen() error {
	if in := d.o.Inherit; in != nil {
		d.ln, d.activated = in.Listener, in.Activated
		d.o.Log.Info("took over the socket and run lock", "from_pid", in.From, "socket", d.o.Paths.Socket)
		return nil
	}
	ln, activated, err := Listen(d.o.Paths.Socket)
	if errors.Is(err, ErrSocketLive) {
		return fmt.Errorf("%w: %s answers connections", ErrAlreadyRunning, d.o.Paths.Socket)
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.o.Paths.Socket, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// Closing our listener must not unlink the path: after a hand-over
		// the successor serves on it. close() removes it when it is ours.
		ul.SetUnlinkOnClose(false)
	}
	d.ln, d.activated = ln, activated
	return nil
}

// startPool builds the remote and replays the spool. No remote configured
// is not an error: the daemon runs, and uploads answer no_remote.
func (d *Daemon) startPool(ctx context.Context) error {
	remote, err := d.o.Remote(ctx, d.o.Config)
	if err != nil {
		return err
	}
	d.remote = remote
	p := d.o.Paths
	d.pool = uploader.NewPool(uploader.Options{Remote: remote, SpoolDir: p.SpoolDir(), FailedDir: p.FailedDir(),
		StoreDir: p.StoreDir(), EventsFile: p.EventsFile(), Workers: d.o.Config.S3.Concurrency, Log: d.o.Log,
		Worked: d.onWork})
	if err := d.pool.Start(ctx); err != nil {
		return fmt.Errorf("start uploads from %s: %w", p.SpoolDir(), err)
	}
	return nil
}

// NewRemote picks the remote the config names: S3 if a bucket is set, else
// a directory if one is set, else none (nil).
func NewRemote(ctx context.Context, c config.Config) (uploader.Remote, error) {
	switch {
	case c.S3.Bucket != "":
		r, err := uploader.NewS3(ctx, c.S3)
		if err != nil {
			return nil, fmt.Errorf("%w: s3: %v", config.ErrInvalid, err)
		}
		return r, nil
	case c.RemoteDir != "":
		r, err := uploader.NewDir(c.RemoteDir)
		if err != nil {
			return nil, fmt.Errorf("%w: remote.dir: %v", config.ErrInvalid, err)
		}
		return r, nil
	}
	return nil, nil
}

// close releases everything open() took, in reverse order. The socket file
// is removed only when we bound it: an activated socket belongs to systemd.
func (d *Daemon) close() {
	d.spoolWatch.stop(true)
	if d.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		_ = d.srv.Shutdown(ctx)
		cancel()
	}
	if c, ok := d.remote.(io.Closer); ok {
		_ = c.Close() // idle HTTP connections of the S3 client
	}
	// A successor stopped before it was ready never served: the socket
	// file belongs to the daemon that started it.
	if d.ln != nil && !d.activated && d.successor == nil && (d.o.Inherit == nil || d.served) {
		_ = os.Remove(d.o.Paths.Socket)
	}
	if d.keptLn != nil {
		_ = d.keptLn.Close()
	}
	if d.lock != nil {
		if d.successor == nil {
			_ = os.Remove(d.o.Paths.StateFile())
		}
		d.writeExit()
		d.recordEnd()
		_ = d.lock.Release()
	}
}

// writeExit writes the exit record last before the run lock goes: who
// finds it (daemon stop, status, tests) finds the daemon's files cleaned up.
func (d *Daemon) writeExit() {
	if d.exitRec == nil {
		return
	}
	if err := statefile.WriteExit(d.o.Paths.ExitFile(), *d.exitRec); err != nil {
		d.o.Log.Warn("write exit record", "err", err)
	}
}

// lockProbeGrace is how long a starting daemon retries the run lock.
const lockProbeGrace = 200 * time.Millisecond

// takeRunLock takes the run lock at once, or, for a successor, waits for
// the draining daemon to release it. Only one successor waits: the others
// find the next lock held and exit as "already running".
func (d *Daemon) takeRunLock(ctx context.Context) (*runlock.Lock, error) {
	p := d.o.Paths
	if d.o.Successor <= 0 {
		// Clients probe the lock (LockHeld takes and drops it), so a
		// single try could lose to a probe; a held lock stays held.
		ctx, cancel := context.WithTimeout(ctx, lockProbeGrace)
		defer cancel()
		lock, err := runlock.WaitLock(ctx, p.RunLock())
		if err != nil && ctx.Err() != nil {
			return nil, runlock.ErrLocked
		}
		return lock, err
	}
	next, err := runlock.TryLock(p.NextLock())
	if err != nil {
		return nil, err
	}
	defer next.Release()
	ctx, cancel := context.WithTimeout(ctx, d.o.Successor)
	defer cancel()
	lock, err := runlock.WaitLock(ctx, p.RunLock())
	if err != nil && ctx.Err() != nil {
		return nil, runlock.ErrLocked
	}
	return lock, err
}
