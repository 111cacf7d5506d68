package monitor

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

// Build is one cargo build as the wrapper recorded it: the invocations
// of one cargo process (the records' cargo_pid), each starting within
// BuildGap of the ones before.
type Build struct {
	Cargo   int       `json:"cargo_pid,omitempty"`
	Started time.Time `json:"started"`
	Last    time.Time `json:"last"` // when its latest invocation ended
	buildlog.Counts
	Recent []Invocation `json:"recent,omitempty"` // newest first, at most maxInvocations
}

// Invocation is one rustc call of a build.
type Invocation struct {
	At      time.Time `json:"at"`
	Crate   string    `json:"crate"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	Ms      float64   `json:"ms"`
}

const (
	// BuildGap splits builds of one cargo process (or of records without
	// a cargo pid): a record starting later than this after the build's
	// last one ended begins a new build.
	BuildGap       = 30 * time.Second
	maxInvocations = 10
	maxOpenBuilds  = 4 // builds that may still receive records (concurrent cargos)
)

// Builds follows builds.jsonl across refreshes: it reads only what was
// appended since the last one (docs/monitor.md) and keeps the builds a
// new record may still belong to. Safe for concurrent use.
type Builds struct {
	mu     sync.Mutex
	tail   tail
	open   []*Build // oldest start first
	lastGo *GoSession
	err    string
}

// GoSession is one `kache cacheprog` session (a go command's cache), as it
// recorded itself when it closed.
type GoSession struct {
	At time.Time `json:"at"` // when it started
	Ms float64   `json:"ms"` // how long it lasted
	buildlog.GoCounts
}

// NewBuilds follows the log at path (<cache>/builds.jsonl).
func NewBuilds(path string) *Builds {
	return &Builds{tail: tail{path: path, budget: readBudget}}
}

// Poll reads what was appended and returns a copy of the current build
// (the one started last; nil before any) and why the log could not be
// read, if it could not.
func (b *Builds) Poll() (*Build, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.tail.poll(b.add)
	b.err = ""
	if err != nil {
		b.err = err.Error()
	}
	if len(b.open) == 0 {
		return nil, b.err
	}
	return b.open[len(b.open)-1].clone(), b.err
}

func (b *Builds) add(r buildlog.Record) {
	switch {
	case r.Tool == "go" && r.Go != nil:
		if b.lastGo == nil || !r.At.Before(b.lastGo.At) {
			b.lastGo = &GoSession{At: r.At, Ms: r.Ms, GoCounts: *r.Go}
		}
	case r.Tool == "rustc":
		b.buildFor(r).add(r)
	}
}

// LastGo is a copy of the go command session recorded last, or nil. Call
// it after Poll.
func (b *Builds) LastGo() *GoSession {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastGo == nil {
		return nil
	}
	g := *b.lastGo
	return &g
}

// buildFor is the open build r belongs to, or a new one.
func (b *Builds) buildFor(r buildlog.Record) *Build {
	start, end := r.At, r.At.Add(time.Duration(r.Ms*float64(time.Millisecond)))
	for _, o := range slices.Backward(b.open) {
		if o.Cargo == r.Cargo && !start.After(o.Last.Add(BuildGap)) && !end.Before(o.Started.Add(-BuildGap)) {
			return o
		}
	}
	n := &Build{Cargo: r.Cargo, Started: start, Last: end}
	b.open = append(b.open, n)
	slices.SortStableFunc(b.open, func(x, y *Build) int { return x.Started.Compare(y.Started) })
	if len(b.open) > maxOpenBuilds {
		b.open = b.open[1:]
	}
	return n
}

func (o *Build) add(r buildlog.Record) {
	end := r.At.Add(time.Duration(r.Ms * float64(time.Millisecond)))
	if r.At.Before(o.Started) {
		o.Started = r.At
	}
	if end.After(o.Last) {
		o.Last = end
	}
	o.Counts.Add(r)
	inv := Invocation{At: r.At, Crate: r.Crate, Outcome: r.Outcome, Reason: r.Reason, Ms: r.Ms}
	o.Recent = append([]Invocation{inv}, o.Recent[:min(len(o.Recent), maxInvocations-1)]...)
}

func (o *Build) clone() *Build {
	c := *o
	c.Recent = slices.Clone(o.Recent)
	c.Reasons = maps.Clone(o.Reasons)
	return &c
}
