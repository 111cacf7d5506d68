package supervisor

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/kunobi-ninja/kache/internal/epoch"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
	"github.com/kunobi-ninja/kache/uploader"
)

// maxCheckDeadline caps a client-chosen remote_check deadline.
const maxCheckDeadline = time.Minute

// defaultCheckDeadline applies when a remote_check carries no deadline.
const defaultCheckDeadline = 3 * time.Second

// answer is handle with the daemon's configuration fingerprint stamped on
// every answer, so any client notices a configuration of its own that
// differs (see cli's driftWarning).
func (d *Daemon) answer(ctx context.Context, req *rpc.Request) *rpc.Response {
	if !observing(req.Op) {
		d.onRequest()
	} else {
		d.trim.activity() // not activity, but it maps code in: trim it again once quiet
	}
	resp := d.handle(ctx, req)
	if resp != nil {
		resp.Config = d.o.InputFingerprint
	}
	return resp
}

// observing reports whether op only looks (status, metrics): such requests
// are not activity, so a monitor refreshing every second or a metrics
// scraper does not keep an idle daemon from exiting, and does not change
// what it observes.
func observing(op rpc.Op) bool {
	return op == rpc.OpStatus || op == rpc.OpMetrics
}

// handle answers one request. It runs on the RPC server's goroutines and
// talks to the loop only through send.
func (d *Daemon) handle(ctx context.Context, req *rpc.Request) *rpc.Response {
	switch req.Op {
	case rpc.OpStatus:
		return &rpc.Response{OK: true, Status: d.status(), Epoch: d.verdict(req.ClientEpoch)}
	case rpc.OpStats:
		if req.Stats != nil && req.Stats.Reset {
			d.resetTotals()
		}
		return d.withEpoch(req, &rpc.Response{OK: true, Stats: d.stats()})
	case rpc.OpBuildStarted:
		d.recordBuild(req.BuildStarted.SessionID)
		return d.withEpoch(req, rpc.OKResponse())
	case rpc.OpUpload:
		return d.withEpoch(req, d.upload(req.Upload.Entries, req.Upload.BuildPid))
	case rpc.OpRemoteCheck:
		return d.remoteCheck(ctx, req.RemoteCheck)
	case rpc.OpPrefetch:
		return d.prefetch(req.Prefetch.Keys)
	case rpc.OpShutdown:
		return d.shutdown(req.Shutdown)
	case rpc.OpMetrics:
		return d.metrics(req.Metrics)
	case rpc.OpReceipts:
		return d.receipts(ctx, req.Receipts.Keys)
	}
	return rpc.Fail(rpc.ErrUnknownOp, "unknown op %q", req.Op)
}

// withEpoch answers the request, then, if the client is newer, asks the
// loop to go epoch-stale: the daemon drains and a fresh binary takes over.
func (d *Daemon) withEpoch(req *rpc.Request, resp *rpc.Response) *rpc.Response {
	v := d.verdict(req.ClientEpoch)
	resp.Epoch = v
	switch {
	case v.Relation == epoch.ClientNewer:
		storeMax(&d.newerClient, v.Client)
		d.post(states.ClientNewer, "client binary is newer (epoch "+i64(v.Client)+" > "+i64(v.Daemon)+")")
	case d.state().state == states.Running && d.otherBuild(req.ClientBuild):
		d.postClientBuild(req.ClientBuild)
	}
	return resp
}

func (d *Daemon) upload(entries []rpc.UploadEntry, buildPid int) *rpc.Response {
	// Starting is fine: the pool is up before the server accepts. Only a
	// daemon on its way out refuses, and the client hands off to a successor.
	if s := d.state().state; s == states.HandedOver {
		// Accepted before the successor took over: it has seen the intents
		// arrive in the spool and uploads them.
		return &rpc.Response{OK: true, Upload: &rpc.UploadResult{}}
	} else if s.Draining() || s == states.Stopped {
		resp := rpc.Fail(rpc.ErrShuttingDown, "daemon is %s; the intents stay in the spool for the next daemon", s)
		if s == states.EpochStale {
			resp.Error.GivingWayTo = d.newerClient.Load()
		}
		return resp
	}
	es := make([]uploader.Entry, len(entries))
	for i, e := range entries {
		es[i] = uploader.Entry{Key: e.Key, Path: e.Path}
	}
	if buildPid > 0 {
		d.pool.HoldFor(buildPid) // first: no worker may take the entries before
	}
	n, err := d.pool.Enqueue(es)
	switch {
	case errors.Is(err, uploader.ErrNoRemote):
		return rpc.Fail(rpc.ErrNoRemote, "no remote configured: set [s3] bucket or [remote] dir in %s (or KACHE_S3_BUCKET / KACHE_REMOTE_DIR); the intents stay in the spool", d.o.Config.File)
	case errors.Is(err, uploader.ErrInvalidEntry):
		return rpc.Fail(rpc.ErrBadRequest, "%v", err)
	case errors.Is(err, uploader.ErrDraining):
		return rpc.Fail(rpc.ErrShuttingDown, "daemon is draining; the intents stay in the spool for the next daemon")
	case err != nil:
		return rpc.Fail(rpc.ErrInternal, "enqueue: %v", err)
	}
	return &rpc.Response{OK: true, Upload: &rpc.UploadResult{Queued: n}}
}

func (d *Daemon) remoteCheck(ctx context.Context, a *rpc.RemoteCheckArgs) *rpc.Response {
	if err := uploader.ValidKey(a.Key); err != nil {
		return rpc.Fail(rpc.ErrBadRequest, "%v", err)
	}
	deadline := time.Duration(a.DeadlineMs) * time.Millisecond
	if deadline <= 0 {
		deadline = defaultCheckDeadline
	}
	deadline = min(deadline, maxCheckDeadline)
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	found, err := d.pool.Fetch(ctx, a.Key)
	switch {
	case errors.Is(err, uploader.ErrNoRemote):
		return rpc.Fail(rpc.ErrNoRemote, "no remote configured")
	case errors.Is(err, context.DeadlineExceeded):
		return rpc.Fail(rpc.ErrTimeout, "remote check of %s passed its %s deadline", a.Key, deadline)
	case err != nil:
		return rpc.Fail(rpc.ErrInternal, "remote check of %s: %v", a.Key, err)
	}
	return &rpc.Response{OK: true, Found: &found}
}

func (d *Daemon) prefetch(keys []string) *rpc.Response {
	for _, k := range keys {
		if err := uploader.ValidKey(k); err != nil {
			return rpc.Fail(rpc.ErrBadRequest, "%v", err)
		}
	}
	d.pool.Prefetch(keys)
	return rpc.OKResponse()
}

// stopApplied bounds how long a shutdown request waits for the loop to
// apply it before answering.
const stopApplied = 2 * time.Second

// maxReason bounds a shutdown reason a client sends: it is written to the
// log, the state file and the history, which must not grow by megabytes.
const maxReason = 256

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (d *Daemon) shutdown(a *rpc.ShutdownArgs) *rpc.Response {
	reason := "shutdown requested"
	if a != nil && a.Reason != "" {
		reason = clip(a.Reason, maxReason)
	}
	queued, inFlight := d.pool.Progress()
	if !d.request(states.StopRequested, reason, stopApplied) {
		d.o.Log.Warn("the shutdown request was not applied in time; the caller waits for the exit anyway", "within", stopApplied)
	}
	return &rpc.Response{OK: true, Shutdown: &rpc.ShutdownResult{Pending: queued + inFlight, Pid: os.Getpid(), Predecessor: d.drainingPredecessor()}}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

// drainingPredecessor is the pid of the daemon that handed over to this
// one if it still runs (draining), else 0.
func (d *Daemon) drainingPredecessor() int {
	if in := d.o.Inherit; in != nil && in.From > 0 && syscall.Kill(in.From, 0) == nil {
		return in.From
	}
	return 0
}

// status is the daemon's view of itself for `kache daemon status`.
func (d *Daemon) status() *rpc.Status {
	s := d.state()
	st := &rpc.Status{Pid: os.Getpid(), Version: d.o.Version, Epoch: d.o.Epoch, Build: d.o.Build, Exe: d.o.Exe,
		State: string(s.state), StateSince: s.since, StateCause: s.cause, StartedAt: d.started,
		UptimeMs: time.Since(d.started).Milliseconds(), IdleTimeoutS: int64(d.o.Config.IdleTimeout / time.Second),
		Socket: d.o.Paths.Socket, Log: d.o.LogPath, SocketActive: d.activated,
		RestartReason: d.restartReason, Remote: d.remoteName(), Queue: d.queue(), Handover: d.lastHandoverErr(),
		Config: d.o.Config.Fingerprint(), ConfigFields: d.o.Config.Fields(), ConfigError: d.configErr()}
	if dl, ok := d.idleDeadline(1); ok && s.state == states.Running {
		st.IdleDeadline = &dl
	}
	st.Queue.Uploading = d.uploading()
	return st
}
