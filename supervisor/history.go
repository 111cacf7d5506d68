package supervisor

import (
	"os"
	"strconv"
	"strings"

	"github.com/kunobi-ninja/kache/internal/history"
)

// StartedByEnv is how a client that spawns kache-daemon tells it why:
// "start" (`kache daemon start`), "auto:<command>" (auto-started by that
// client command), "successor:<pid>" (taking over from a draining pid),
// "restart". Unset, the daemon works it out (see startHow).
const StartedByEnv = "KACHE_STARTED_BY"

// recordStart opens the lifecycle history of this generation, once the
// run lock is ours (the file has one writer), and writes its start line.
func (d *Daemon) recordStart() {
	// A successor of a hand-over starts while its predecessor still runs
	// (and will write its own end): that generation was not killed.
	d.startTotals(d.o.Inherit == nil && previousKilled(history.File(d.o.Paths.CacheDir)))
	d.hist = history.NewWriter(history.File(d.o.Paths.CacheDir), os.Getpid(), d.started)
	how, pred := d.startHow()
	d.histErr(d.hist.Append(history.Record{Kind: history.KindStart, How: how, Predecessor: pred,
		Version: d.o.Version, Epoch: d.o.Epoch, Exe: d.o.Exe, Config: configFingerprint(d.o),
		RestartReason: d.restartReason}))
}

// startHow is how this daemon was started: what the client said, else
// socket activation, a service manager (our parent is the manager that
// set MANAGERPID, or launchd), else a foreground `kache daemon run`.
func (d *Daemon) startHow() (how string, predecessor int) {
	if d.o.Inherit != nil {
		return history.HowSuccessor, d.o.Inherit.From
	}
	by := d.o.StartedBy
	if rest, ok := strings.CutPrefix(by, history.HowSuccessor+":"); ok {
		pid, _ := strconv.Atoi(rest)
		return history.HowSuccessor, pid
	}
	switch {
	case by != "":
		return by, 0
	case d.activated:
		return history.HowSocket, 0
	case underServiceManager():
		return history.HowService, 0
	}
	return history.HowForeground, 0
}

// underServiceManager: systemd sets MANAGERPID to the manager that started
// the service, which is our parent since `kache daemon run` execs us;
// launchd agents are children of pid 1 with XPC_SERVICE_NAME set.
func underServiceManager() bool {
	ppid := os.Getppid()
	if m := os.Getenv("MANAGERPID"); m != "" && m == strconv.Itoa(ppid) {
		return true
	}
	return ppid == 1 && os.Getenv("XPC_SERVICE_NAME") != ""
}

// configFingerprint tells two generations' effective configs apart
// without recording the config itself: the fingerprint status shows too.
func configFingerprint(o Options) string { return o.Config.Fingerprint() }

// recordState appends a state change; from is the state it left.
func (d *Daemon) recordState(from snapshot, to snapshot, ev string) {
	d.histErr(d.hist.Append(history.Record{Kind: history.KindState, TS: to.since.UTC(),
		From: string(from.state), To: string(to.state), Event: ev, Cause: to.cause}))
}

// recordEnd appends how this generation ended, from its exit record.
func (d *Daemon) recordEnd() {
	r := d.exitRec
	if r == nil {
		d.stopTotals("")
		return
	}
	d.stopTotals(r.Reason)
	d.histErr(d.hist.Append(history.Record{Kind: history.KindEnd, TS: r.At.UTC(), Reason: r.Reason, Code: r.Code,
		Drained: r.Drained, Left: r.Left, Failed: r.Failed, Message: r.Message}))
}

func (d *Daemon) histErr(err error) {
	if err != nil {
		d.o.Log.Warn("lifecycle history", "err", err)
	}
}
