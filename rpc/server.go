package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// Handler answers one well-formed request. The server has already checked
// the protocol version, the op and the presence of the op's arguments, so a
// handler only deals with meaning. ctx is cancelled when the server is shut
// down forcibly.
type Handler interface {
	Handle(ctx context.Context, req *Request) *Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) *Response

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) *Response { return f(ctx, req) }

// ServerOptions bound the server. Zero values take the defaults below.
type ServerOptions struct {
	MaxConns     int           // concurrent connections served; more get one busy line (default 128)
	ReadTimeout  time.Duration // time allowed to receive each request line, idle time included (default 60s)
	WriteTimeout time.Duration // time allowed to write each response line (default 10s)
	Log          *slog.Logger  // default slog.Default()
	// MaxBuffered bounds the bytes of lines longer than the 16 KiB read
	// buffer that all connections together may hold while they arrive; a
	// connection whose line would pass it gets one busy line and is closed
	// (default 32 MiB). Frames are still capped at MaxFrame each.
	MaxBuffered int
	// OnRequest is called for every well-formed request before Handle; the
	// daemon counts it as activity for its idle timer. It runs on the
	// connections' goroutines, so it must be safe for concurrent use.
	OnRequest func()
}

// Defaults applied by NewServer and Close.
const (
	DefaultMaxConns     = 128
	DefaultReadTimeout  = 60 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseTimeout = 10 * time.Second
	DefaultMaxBuffered  = 32 << 20
	readBufferSize      = 16 << 10
	// maxRefusalLog bounds the uids whose refusal is remembered, so that
	// "log once per uid" cannot itself grow without bound.
	maxRefusalLog = 1024
)

// readerPool recycles connections' read buffers: a client process makes one
// call per connection, and a fresh 16 KiB buffer each time was a good part
// of the daemon's work per call.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// Server frames, bounds and dispatches requests to a Handler. It serves any
// number of listeners; Shutdown stops them all.
type Server struct {
	h      Handler
	o      ServerOptions
	log    *slog.Logger
	base   context.Context
	cancel context.CancelFunc
	uid    uint32  // the only peer uid served: the daemon's own
	budget *budget // shared by all connections' line buffers

	mu        sync.Mutex
	closing   bool
	handover  bool // closing for a successor: fresh connections are still answered (Handover)
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	drained   chan struct{}   // closed once closing and no connection is left
	closed    chan struct{}   // closed when closing starts; wakes accept backoff
	refused   map[uint32]bool // uids already logged as refused
}

// NewServer returns a server for h with o's bounds.
func NewServer(h Handler, o ServerOptions) *Server {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		h: h, o: o, log: o.Log, base: base, cancel: cancel,
		uid: myUID(), budget: &budget{max: int64(o.MaxBuffered)}, refused: map[uint32]bool{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		drained:   make(chan struct{}),
		closed:    make(chan struct{}),
	}
}

// ActiveConns is the number of connections being served (busy rejections
// excluded).
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Serve accepts connections on ln until the server is closed, then returns
// nil. Any other accept failure is returned; transient ones (out of file
// descriptors) are retried with backoff so a burst cannot kill the daemon.
func (s *Server) Serve(ln net.Listener) error {
	if !s.addListener(ln) {
		ln.Close()
		return nil
	}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil {
			backoff = 0
			s.admit(nc)
			continue
		}
		if s.isClosing() {
			return nil
		}
		if !isTransientAccept(err) {
			s.removeListener(ln)
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		s.log.Warn("rpc: accept failed, retrying", "err", err, "backoff", backoff)
		s.pause(backoff)
	}
}

// pause waits d or until the server starts closing.
func (s *Server) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closed:
	}
}

func isTransientAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

func (s *Server) addListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) removeListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// admit starts serving nc, or answers busy when the cap is reached. The busy
// line is written inline: it is tiny, fits any socket buffer, and its write
// deadline bounds the accept loop's stall.
func (s *Server) admit(nc net.Conn) {
	if !s.trusted(nc) {
		return
	}
	c := &conn{s: s, nc: nc}
	s.mu.Lock()
	full, closing := len(s.conns) >= s.o.MaxConns, s.closing && !s.handover
	if !full && !closing {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	switch {
	case closing:
		c.reject(Fail(ErrShuttingDown, "the daemon is shutting down; retry in a moment"))
	case full:
		s.log.Warn("rpc: connection cap reached", "max_conns", s.o.MaxConns)
		c.reject(Fail(ErrBusy, "the daemon is serving its maximum of %d connections; retry shortly", s.o.MaxConns))
	default:
		c.fr = frameReader{r: readerPool.Get().(*bufio.Reader), budget: s.budget}
		c.fr.r.Reset(nc)
		go c.serve()
	}
}

// Close shuts the server down gracefully within DefaultCloseTimeout.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCloseTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in progress to be answered. If ctx ends first it cancels the
// handlers' context, closes every connection and returns ctx's error; a
// handler that ignores its context may still be running then.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	select {
	case <-s.drained:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.closeAll()
		return fmt.Errorf("rpc shutdown: requests still running: %w", ctx.Err())
	}
}

// Handover stops accepting because a successor accepts on the same socket
// now, and closes each connection once it has answered one request: a
// connection the listener accepted just before it closed still gets the
// answer to its first request, not shutting_down, while its client is
// about to send it. Idle connections that were answered already close. It
// waits like Shutdown, and ctx bounds it the same way.
func (s *Server) Handover(ctx context.Context) error {
	s.mu.Lock()
	s.handover = true
	s.mu.Unlock()
	return s.Shutdown(ctx)
}

// beginClose marks the server closing, closes listeners and idle
// connections. Busy connections close themselves after their answer.
func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing = true
	close(s.closed)
	for ln := range s.listeners {
		ln.Close()
	}
	clear(s.listeners)
	for c := range s.conns {
		if !c.busy && !s.owed(c) {
			c.nc.Close()
		}
	}
	s.signalDrained()
}

// owed reports whether c is owed an answer although the server closes: in
// a hand-over, a connection accepted before the listener closed has not
// sent its request yet, and its client did nothing wrong. s.mu must be held.
func (s *Server) owed(c *conn) bool { return s.handover && !c.served }

// signalDrained closes drained when closing and empty; s.mu must be held.
func (s *Server) signalDrained() {
	if s.closing && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// forget removes c once its goroutine ends and recycles its buffers.
func (s *Server) forget(c *conn) {
	c.nc.Close()
	c.fr.release()
	c.fr.r.Reset(nil)
	readerPool.Put(c.fr.r)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.signalDrained()
}

// setBusy records whether c is handling a request. It returns false when the
// server is closing, so c stops instead of starting or awaiting another.
func (s *Server) setBusy(c *conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if busy && s.closing && !s.owed(c) {
		return false
	}
	c.busy = busy
	if !busy {
		c.served = true
	}
	return !s.closing || busy
}

// conn is one served connection. busy is guarded by Server.mu.
type conn struct {
	s      *Server
	nc     net.Conn
	fr     frameReader
	busy   bool
	served bool // answered a request already
}

// serve answers request lines until the peer leaves, a deadline passes, a
// frame is too large, or the server closes.
func (c *conn) serve() {
	defer c.s.forget(c)
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.s.o.ReadTimeout))
		line, err := c.fr.next()
		if resp := c.s.frameError(err); resp != nil {
			c.write(resp)
			return
		}
		if len(line) > 0 && !c.answer(line) {
			return
		}
		if err != nil {
			return // EOF, read deadline, or closed by Shutdown: leave silently
		}
	}
}

// frameError turns a read error that ends the connection with an answer
// into that answer; other errors (EOF, deadline) end it silently.
func (s *Server) frameError(err error) *Response {
	switch {
	case errors.Is(err, errFrameTooLarge):
		s.log.Warn("rpc: request line over the frame cap; closing the connection", "max_frame", MaxFrame)
		return Fail(ErrTooLarge, "request line exceeds %d bytes (newline included); the connection is closed", MaxFrame)
	case errors.Is(err, errOverBudget):
		s.log.Warn("rpc: unfinished request lines fill the buffer budget; closing the connection", "max_buffered", s.o.MaxBuffered)
		return Fail(ErrBusy, "the daemon is already holding %d bytes of unfinished requests from all connections; retry shortly, or send fewer entries per call", s.o.MaxBuffered)
	}
	return nil
}

// answer handles one line and reports whether the connection may go on.
func (c *conn) answer(line []byte) bool {
	if isBlank(line) {
		return true
	}
	if !c.s.setBusy(c, true) {
		c.write(Fail(ErrShuttingDown, "the daemon is shutting down; retry in a moment"))
		return false
	}
	ok := c.write(c.s.respond(line))
	return c.s.setBusy(c, false) && ok
}

// reject answers a connection that will not be served, then closes it.
func (c *conn) reject(resp *Response) {
	c.write(resp)
	c.nc.Close()
}

// write sends one response line within WriteTimeout.
func (c *conn) write(resp *Response) bool {
	b := encodeResponse(resp)
	c.nc.SetWriteDeadline(time.Now().Add(c.s.o.WriteTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.s.log.Debug("rpc: write failed", "err", err)
		return false
	}
	return true
}

func isBlank(line []byte) bool {
	for _, b := range line {
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return false
		}
	}
	return true
}

// respond decodes and checks one request line and runs the handler on it.
func (s *Server) respond(line []byte) *Response {
	req, resp := decodeRequest(line)
	if resp == nil {
		resp = check(req)
	}
	if resp != nil {
		return resp
	}
	if s.o.OnRequest != nil {
		s.o.OnRequest()
	}
	return s.handle(req)
}

// handle runs the handler, turning a panic or a nil answer into an
// internal error so one bad request cannot take the daemon down.
func (s *Server) handle(req *Request) (resp *Response) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("rpc: handler panicked", "op", req.Op, "panic", v, "stack", string(debug.Stack()))
			resp = Fail(ErrInternal, "the daemon failed on %q (%v); see `kache daemon log`", req.Op, v)
		}
	}()
	resp = s.h.Handle(s.base, req)
	if resp == nil {
		s.log.Error("rpc: handler returned no response", "op", req.Op)
		return Fail(ErrInternal, "the daemon returned no answer to %q; see `kache daemon log`", req.Op)
	}
	return resp
}
