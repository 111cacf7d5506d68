package uploader

import (
	"slices"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/poll"
	"github.com/kunobi-ninja/kache/internal/procid"
)

// Uploads wait for the build that made them. A compile hands its entry
// over at once (the spool has it, nothing is lost), but packing,
// compressing and sending it while the build runs takes CPU from the
// compilers: on two cores the daemon's 5 s of upload work in a 30 s cold
// Rust build was a few percent of its wall time, and the go command's
// cold build uploading 255 MB took 17 % longer. So while the build an
// upload came from (cargo, the go command: the pid the client names)
// still runs, no worker starts a new upload; once it exits, or after
// MaxBuildHold, they all go. A drain (stop, hand-over) never waits.

// MaxBuildHold bounds how long uploads wait for running builds: a build
// longer than this shares the machine with its uploads from then on.
const MaxBuildHold = 10 * time.Minute

// holdPoll is how often the hold checks whether its builds still run,
// only while it holds.
const holdPoll = 200 * time.Millisecond

// hold is the set of running builds uploads wait for.
type hold struct {
	mu     sync.Mutex
	builds map[int]uint64 // pid → start time, so a reused pid is not the build
	spent  map[int]uint64 // builds held for MaxBuildHold already: not again
	since  time.Time      // when the current hold began
	free   chan struct{}  // closed when the hold ends; nil while none
	max    time.Duration
	alive  func(pid int, start uint64) bool
	onEnd  func(pids []int, held time.Duration, timedOut bool)
}

func newHold() *hold {
	return &hold{builds: map[int]uint64{}, spent: map[int]uint64{}, max: MaxBuildHold, alive: buildAlive}
}

// buildAlive reports whether pid is still the process first seen with
// start.
func buildAlive(pid int, start uint64) bool {
	info, err := procid.Inspect(pid)
	return err == nil && info.StartTime == start && !procid.Exited(pid)
}

// add registers a running build; it returns the channel closed when the
// hold ends, and whether this began a hold (the caller then watches it).
func (h *hold) add(pid int) (began bool) {
	if pid <= 1 || h.has(pid) {
		return false
	}
	info, err := procid.Inspect(pid)
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if start, ok := h.spent[pid]; ok && start == info.StartTime {
		return false
	}
	h.builds[pid] = info.StartTime
	if h.free != nil {
		return false
	}
	h.free, h.since = make(chan struct{}), time.Now()
	return true
}

// has reports whether pid is held for already (each intent of a build
// names it: one look at /proc per build, not per entry).
func (h *hold) has(pid int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.builds[pid]
	return ok && h.free != nil
}

// waiting returns the channel a worker waits on before starting an
// upload, nil when uploads may go.
func (h *hold) waiting() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.free
}

// pids lists the builds held for, for status.
func (h *hold) pids() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.free == nil {
		return nil
	}
	out := make([]int, 0, len(h.builds))
	for pid := range h.builds {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// check drops the builds that ended and ends the hold when none is left
// or it lasted MaxBuildHold; it reports whether the hold is over.
func (h *hold) check(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.free == nil {
		return true
	}
	var gone []int
	for pid, start := range h.builds {
		if !h.alive(pid, start) {
			delete(h.builds, pid)
			gone = append(gone, pid)
		}
	}
	timedOut := now.Sub(h.since) >= h.max
	if len(h.builds) > 0 && !timedOut {
		return false
	}
	h.endLocked(gone, now, timedOut)
	return true
}

// end releases the workers at once (a drain begins).
func (h *hold) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.free != nil {
		h.endLocked(nil, time.Now(), false)
	}
}

func (h *hold) endLocked(gone []int, now time.Time, timedOut bool) {
	close(h.free)
	h.free = nil
	for pid, start := range h.spent {
		if !h.alive(pid, start) {
			delete(h.spent, pid)
		}
	}
	if timedOut {
		for pid, start := range h.builds {
			h.spent[pid] = start
		}
	}
	clear(h.builds)
	if h.onEnd != nil {
		h.onEnd(gone, now.Sub(h.since), timedOut)
	}
}

// HoldFor registers pid as the running build an upload came from: no
// worker starts an upload until it exits (or MaxBuildHold passes). A pid
// that is not running, or a pool draining, holds nothing.
func (p *Pool) HoldFor(pid int) {
	if pid <= 1 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.Remote == nil || p.draining || !p.started || p.ctx.Err() != nil {
		return
	}
	if p.hold.add(pid) {
		p.log.Info("uploads wait for the build to end", "build_pid", pid)
		p.wg.Add(1) // the workers are in p.wg until the drain: never zero here
		go p.watchHold()
	}
}

// WaitingForBuilds lists the builds the uploads wait for.
func (p *Pool) WaitingForBuilds() []int { return p.hold.pids() }

// watchHold ends the hold once its builds are gone, looking only while
// it holds. A drain ends the hold itself (beginDrain); the watcher then
// returns at its next look.
func (p *Pool) watchHold() {
	defer p.wg.Done()
	_ = poll.Until(p.ctx, poll.Real, holdPoll, poll.Forever, func() bool {
		return isClosed(p.closed) || p.hold.check(time.Now())
	})
	p.hold.end()
}

// holdEnded logs why uploads resume.
func (p *Pool) holdEnded(gone []int, held time.Duration, timedOut bool) {
	if timedOut {
		p.log.Info("uploads resume: the build still runs after the longest hold", "held", held.Round(time.Millisecond), "max", MaxBuildHold)
		return
	}
	p.log.Info("uploads resume: the build ended", "held", held.Round(time.Millisecond), "build_pids", gone)
}
