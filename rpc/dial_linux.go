//go:build linux

package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// dialUnix connects to socket with plain blocking system calls instead of
// Go's network poller. A client makes a call and then only waits for its
// answer: a blocking read puts the waiting thread to sleep in the kernel and
// the answer wakes exactly that thread, where the poller costs a
// registration, a read that fails with EAGAIN, an epoll wait, a hand-off
// between threads and a deregistration, and the net package adds
// getsockname and getpeername. On this project's 2-core VMs a system call
// costs about 2 µs, and those extras were most of the round trip.
//
// The connect itself is non-blocking, so a full backlog fails at once with
// EAGAIN (a wedged daemon) instead of waiting, as net.Dial behaves.
func dialUnix(ctx context.Context, socket string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, dialOpError(socket, os.NewSyscallError("socket", err))
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socket}); err != nil {
		unix.Close(fd)
		return nil, dialOpError(socket, os.NewSyscallError("connect", err))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, dialOpError(socket, os.NewSyscallError("fcntl", err))
	}
	return &fdConn{fd: fd, raddr: &net.UnixAddr{Name: socket, Net: "unix"}}, nil
}

func dialOpError(socket string, err error) error {
	return &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: socket, Net: "unix"}, Err: err}
}

// fdConn is a client connection over a blocking socket. Its deadline is a
// timer that shuts the socket down, which wakes a blocked read or write;
// after that the connection only returns os.ErrDeadlineExceeded, unlike a
// net.Conn, whose deadline can be extended again. Client drops a connection
// after any error, so it never needs that. Reads and writes share the one
// deadline.
type fdConn struct {
	fd      int
	raddr   net.Addr
	expired atomic.Bool

	mu     sync.Mutex // orders Close against a firing timer, so a reused fd is never shut down
	closed bool
	timer  *time.Timer
	gen    uint64 // bumped by every SetDeadline, so a stale timer does nothing
}

// Read reads from the socket, blocking the calling thread.
func (c *fdConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case c.expired.Load():
			return max(n, 0), os.ErrDeadlineExceeded
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, c.opError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p. MSG_NOSIGNAL turns a closed peer into EPIPE
// rather than a SIGPIPE.
func (c *fdConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.SendmsgN(c.fd, p[written:], nil, nil, unix.MSG_NOSIGNAL)
		switch {
		case c.expired.Load():
			return written, os.ErrDeadlineExceeded
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return written, c.opError("write", err)
		}
		written += n
	}
	return written, nil
}

func (c *fdConn) opError(op string, err error) error {
	if c.isClosed() {
		err = net.ErrClosed
	} else {
		err = os.NewSyscallError(op, err)
	}
	return &net.OpError{Op: op, Net: "unix", Addr: c.raddr, Err: err}
}

func (c *fdConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close closes the socket; a pending timer no longer touches it.
func (c *fdConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	c.stopTimer()
	return unix.Close(c.fd)
}

// SetDeadline arms the timer for t; a time already past interrupts at once
// and the zero time disarms it.
func (c *fdConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.stopTimer()
	switch d := time.Until(t); {
	case t.IsZero():
	case d <= 0:
		c.expireLocked()
	default:
		gen := c.gen
		c.timer = time.AfterFunc(d, func() { c.expire(gen) })
	}
	return nil
}

func (c *fdConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *fdConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

func (c *fdConn) stopTimer() {
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// expire interrupts the connection if the deadline of generation gen is
// still the current one.
func (c *fdConn) expire(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen && !c.closed {
		c.expireLocked()
	}
}

func (c *fdConn) expireLocked() {
	c.expired.Store(true)
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
}

// control runs f on the socket while Close cannot run.
func (c *fdConn) control(f func(fd uintptr)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	f(uintptr(c.fd))
	return nil
}

func (c *fdConn) LocalAddr() net.Addr  { return &net.UnixAddr{Net: "unix"} }
func (c *fdConn) RemoteAddr() net.Addr { return c.raddr }
