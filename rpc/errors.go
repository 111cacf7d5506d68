package rpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrNotRunning marks a dial that found no daemon: no socket file, a stale
// socket nobody listens on, or a listener that never accepted. Callers test
// it with IsNotRunning to decide between auto-starting and going offline.
var ErrNotRunning = errors.New("daemon not running")

// ErrNoAnswer marks a daemon that accepted the connection but did not answer
// within the call's deadline: it is alive but busy or wedged, which a fresh
// `kache daemon start` cannot fix and `kache daemon restart` can.
var ErrNoAnswer = errors.New("daemon did not answer")

// IsNotRunning reports whether err says no daemon listens on the socket.
func IsNotRunning(err error) bool { return errors.Is(err, ErrNotRunning) }

// KindOf returns the wire error kind carried by err, or "" when err did not
// come from the daemon's answer. Clients switch on kinds, never on messages.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// Fail builds a failed response of the given kind. The message should tell
// the reader what to do, since it reaches users verbatim.
func Fail(kind ErrorKind, format string, args ...any) *Response {
	return &Response{Error: &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}}
}

// OKResponse builds a bare successful response for handlers to fill in.
func OKResponse() *Response { return &Response{OK: true} }

// dialError is a failed dial. It unwraps to both ErrNotRunning (when it
// means "nobody there") and the underlying cause, so errors.Is works for
// the sentinel and for syscall.ECONNREFUSED alike, while its message stays
// one readable line.
type dialError struct {
	socket string
	reason string
	absent bool // nobody accepts: starting a daemon is the cure
	stuck  bool // something holds the socket but does not accept in time
	err    error
}

func (e *dialError) Error() string {
	switch {
	case !e.absent:
		return fmt.Sprintf("cannot reach the daemon at %s (dial: %s)", e.socket, e.reason)
	case e.stuck:
		return fmt.Sprintf("%v at %s: run `kache daemon start` (or `kache daemon restart` if it is stuck) (dial: %s)",
			ErrNotRunning, e.socket, e.reason)
	default:
		return fmt.Sprintf("%v at %s: run `kache daemon start` (dial: %s)", ErrNotRunning, e.socket, e.reason)
	}
}

func (e *dialError) Unwrap() []error {
	if e.absent {
		return []error{ErrNotRunning, e.err}
	}
	return []error{e.err}
}

// newDialError classifies a dial failure. "Nobody is there" causes count as
// not running, and so do a timeout or a full backlog (EAGAIN), which is how
// a stopped or wedged daemon looks; their message adds the restart hint. A
// permission error, say, would not be cured by starting a daemon, so it is
// reported as it is.
func newDialError(socket string, err error) error {
	e := &dialError{socket: socket, reason: err.Error(), err: err}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		e.reason = errno.Error()
		e.stuck = errno == syscall.EAGAIN || errno == syscall.ETIMEDOUT
		e.absent = e.stuck || errno == syscall.ENOENT || errno == syscall.ECONNREFUSED || errno == syscall.ENOTSOCK
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		e.reason = "i/o timeout"
		e.absent, e.stuck = true, true
	}
	return e
}

// noAnswerError builds the error for a call whose deadline passed after the
// connection was made. It wraps context.DeadlineExceeded as well, for
// callers that only know the standard sentinel.
func noAnswerError(socket string, op Op, timeout time.Duration) error {
	return fmt.Errorf("%w at %s to %q within %s (%w): it may be stuck; run `kache daemon restart` if this persists",
		ErrNoAnswer, socket, op, timeout, context.DeadlineExceeded)
}

// Offline reports whether err means "no daemon to talk to": not running,
// or draining toward its exit.
func Offline(err error) bool {
	var e *Error
	return IsNotRunning(err) || (errors.As(err, &e) && e.Kind == ErrShuttingDown)
}
