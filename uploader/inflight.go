package uploader

import (
	"slices"
	"time"
)

// Flight is one upload in flight: what the monitor lists.
type Flight struct {
	Key   string
	Path  string
	Since time.Time // when a worker took it (retries included since)
}

// maxFlights bounds the list: a window of thousands is summarised by
// its count, the oldest ones are what a person looks for.
const maxFlights = 16

// InFlight lists the uploads in flight, oldest first, at most maxFlights.
func (p *Pool) InFlight() []Flight {
	p.mu.Lock()
	out := make([]Flight, 0, len(p.inflight))
	for _, j := range p.inflight {
		out = append(out, Flight{Key: j.Key, Path: j.Path, Since: j.since})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Flight) int { return a.Since.Compare(b.Since) })
	return out[:min(len(out), maxFlights)]
}
