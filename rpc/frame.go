package rpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// errFrameTooLarge is returned for a line over MaxFrame.
var errFrameTooLarge = fmt.Errorf("line exceeds %d bytes", MaxFrame)

// errOverBudget is returned when a line needs more memory than the
// server's shared budget has left.
var errOverBudget = errors.New("the server's budget for unfinished lines is spent")

// budget is the bytes of line buffers the server may hold at once across
// all its connections. Without it each connection is bounded by MaxFrame
// but their sum is not: 120 connections each sending most of an 8 MiB line
// held a gigabyte.
type budget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports that they would exceed the budget.
func (b *budget) take(n int) bool {
	for {
		used := b.used.Load()
		if used+int64(n) > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

func (b *budget) give(n int) { b.used.Add(-int64(n)) }

// frameReader splits a stream into lines of at most MaxFrame bytes,
// newline included. A line that fits the bufio.Reader's buffer is returned
// from it without copying; a longer one is gathered in a buffer charged to
// the shared budget (when there is one), which release gives back.
type frameReader struct {
	r      *bufio.Reader
	budget *budget // nil: only MaxFrame bounds a line
	line   []byte
}

// readFrame reads one line with no budget but MaxFrame; the client reads
// its answers with it.
func readFrame(r *bufio.Reader) ([]byte, error) {
	f := frameReader{r: r}
	return f.next()
}

// next reads one line and returns it without the newline. It never holds
// more than MaxFrame bytes, so a peer cannot make it buffer an endless line.
// Unterminated data before EOF is returned with io.EOF, so
// `printf ... | nc -U` still gets an answer. The line is valid until the
// next call or release.
func (f *frameReader) next() ([]byte, error) {
	f.release()
	for {
		chunk, err := f.r.ReadSlice('\n')
		if len(f.line)+len(chunk) > MaxFrame {
			return nil, errFrameTooLarge
		}
		switch {
		case err == nil && f.line == nil:
			return chunk[:len(chunk)-1], nil
		case err == nil:
			if err := f.append(chunk); err != nil {
				return nil, err
			}
			return f.line[:len(f.line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			if err := f.append(chunk); err != nil {
				return nil, err
			}
		case errors.Is(err, io.EOF) && len(f.line)+len(chunk) > 0:
			if err := f.append(chunk); err != nil {
				return nil, err
			}
			return f.line, io.EOF
		default:
			return nil, err
		}
	}
}

// append adds chunk to the gathered line, growing its buffer by doubling
// but never past MaxFrame, and charging the growth to the budget before
// allocating it.
func (f *frameReader) append(chunk []byte) error {
	n := len(f.line) + len(chunk)
	if n <= cap(f.line) {
		f.line = append(f.line, chunk...)
		return nil
	}
	size := min(max(2*cap(f.line), n), MaxFrame)
	if f.budget != nil && !f.budget.take(size) {
		if size = n; !f.budget.take(size) {
			return errOverBudget
		}
	}
	grown := make([]byte, len(f.line), size)
	copy(grown, f.line)
	if f.budget != nil {
		f.budget.give(cap(f.line))
	}
	f.line = append(grown, chunk...)
	return nil
}

// release drops the gathered line's buffer and gives its bytes back, so an
// idle connection holds nothing beyond its bufio.Reader.
func (f *frameReader) release() {
	if f.budget != nil {
		f.budget.give(cap(f.line))
	}
	f.line = nil
}
