package uploader

import (
	"context"
	"io"
	"slices"
	"sync/atomic"
	"time"
)

// Flight is one upload in flight: what the monitor lists.
type Flight struct {
	Key   string
	Path  string
	Since time.Time // when a worker took it (retries included since)
	Sent  int64     // bytes of the current attempt the remote has read
}

// maxFlights bounds the list: a window of thousands is summarised by
// its count, the oldest ones are what a person looks for.
const maxFlights = 16

// InFlight lists the uploads in flight, oldest first, at most maxFlights.
func (p *Pool) InFlight() []Flight {
	p.mu.Lock()
	out := make([]Flight, 0, len(p.inflight))
	for _, j := range p.inflight {
		out = append(out, Flight{Key: j.Key, Path: j.Path, Since: j.since, Sent: j.sent.Load()})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Flight) int { return a.Since.Compare(b.Since) })
	return out[:min(len(out), maxFlights)]
}

// progressKey carries an upload's byte counter to PutEntry.
type progressKey struct{}

func withProgress(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, progressKey{}, n)
}

// counted wraps body so that the bytes read from it are added to the
// context's counter, if any. Every body PutEntry sends can seek (a byte
// slice, a section of a file), and the wrapper keeps that: the S3 client
// seeks back to sign and to retry.
func counted(ctx context.Context, body io.ReadSeeker) io.ReadSeeker {
	n, _ := ctx.Value(progressKey{}).(*atomic.Int64)
	if n == nil {
		return body
	}
	return &countingBody{ReadSeeker: body, n: n}
}

type countingBody struct {
	io.ReadSeeker
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	k, err := c.ReadSeeker.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// Seek restarts the count when the body is read again from the start.
func (c *countingBody) Seek(off int64, whence int) (int64, error) {
	pos, err := c.ReadSeeker.Seek(off, whence)
	if err == nil {
		c.n.Store(pos)
	}
	return pos, err
}
