package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Client timeouts and margins.
const (
	DefaultDialTimeout        = time.Second
	DefaultCallTimeout        = 5 * time.Second
	DefaultRemoteCheckTimeout = 3 * time.Second
	// remoteCheckMargin is added to a remote check's deadline to form the
	// call timeout, so the daemon's own "not found in time" answer arrives
	// before the client gives up on it.
	remoteCheckMargin = 500 * time.Millisecond
	// clientBufferSize fits the usual answer; readFrame grows past it for
	// the rare large one.
	clientBufferSize = 1 << 10
)

// Client talks to one daemon socket. It keeps one connection open across
// calls and is safe for concurrent use; calls are serialised on that
// connection. The zero value needs only Socket.
type Client struct {
	Socket string
	Epoch  int64         // this binary's build epoch, sent as client_epoch
	Build  func() string // the installation's build ID, sent as client_build; nil sends none
	// SeenConfig is the daemon's configuration fingerprint from its last
	// answer (config.InputFingerprint), for the caller to compare.
	SeenConfig  string
	DialTimeout time.Duration // default DefaultDialTimeout
	CallTimeout time.Duration // default DefaultCallTimeout, unless ctx ends sooner
	// Dial opens the connection; tests swap it. Default: a unix net.Dialer.
	Dial func(ctx context.Context, socket string) (net.Conn, error)

	once sync.Once
	sem  chan struct{} // one token: holds the connection
	conn net.Conn
	r    *bufio.Reader
}

// Call sends req (a copy, with Proto and ClientEpoch filled in) and returns
// the daemon's answer. An ok:false answer is returned together with its
// *Error, so callers can use errors.As or KindOf and still read the fields.
func (c *Client) Call(ctx context.Context, req *Request) (*Response, error) {
	return c.call(ctx, req, c.callTimeout())
}

// Close drops the kept connection, after any call in progress. The client
// stays usable: the next call dials again.
func (c *Client) Close() error {
	c.init()
	c.sem <- struct{}{}
	defer func() { <-c.sem }()
	return c.drop()
}

func (c *Client) init() { c.once.Do(func() { c.sem = make(chan struct{}, 1) }) }

func (c *Client) callTimeout() time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return DefaultCallTimeout
}

func (c *Client) call(ctx context.Context, req *Request, timeout time.Duration) (*Response, error) {
	r := *req
	r.Proto, r.ClientEpoch = ProtocolVersion, c.Epoch
	if c.Build != nil {
		r.ClientBuild = c.Build()
	}
	line, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode %q request: %w", r.Op, err)
	}
	if len(line) >= MaxFrame {
		return nil, fmt.Errorf("%q request is %d bytes, over the %d-byte frame cap; send fewer entries per call", r.Op, len(line), MaxFrame)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl).Round(time.Millisecond) // the caller's deadline is the one that counts
	}
	if err := c.acquire(ctx); err != nil {
		return nil, c.failure(ctx, r.Op, timeout, err)
	}
	defer func() { <-c.sem }()
	resp, err := c.exchange(ctx, append(line, '\n'))
	if err != nil {
		return nil, c.failure(ctx, r.Op, timeout, err)
	}
	if resp.Config != "" {
		c.SeenConfig = resp.Config
	}
	return resp, answerError(resp)
}

// acquire takes the connection, giving up when ctx ends.
func (c *Client) acquire(ctx context.Context) error {
	c.init()
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exchange sends one line and reads one answer. A kept connection that
// proves dead before the line went out (the daemon closed it while idle) is
// replaced once; after the line is out, a retry could run a request twice,
// so the error is returned instead.
func (c *Client) exchange(ctx context.Context, line []byte) (*Response, error) {
	reused := c.conn != nil && c.alive()
	if !reused {
		c.drop()
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
	}
	resp, sent, err := c.roundTrip(ctx, line)
	if err != nil && reused && !sent {
		c.drop()
		if err := c.connect(ctx); err != nil {
			return nil, err
		}
		resp, _, err = c.roundTrip(ctx, line)
	}
	if err != nil {
		c.drop()
	}
	return resp, err
}

// alive peeks at the kept connection without blocking: EOF, an error or
// unread bytes there mean it cannot carry the next call. Connections that
// expose no file descriptor are assumed alive and rely on the
// write-failure retry.
func (c *Client) alive() bool {
	live := true
	err := withFD(c.conn, func(fd uintptr) {
		var b [1]byte
		// Only "nothing to read yet" is healthy: 0 bytes is EOF, and a byte
		// would be a stray answer that puts the stream out of step.
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		live = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR)
	})
	if errors.Is(err, errNoFD) {
		return true
	}
	return err == nil && live
}

// connect dials the socket and makes sure its owner is this user before
// anything is sent (see ErrImpostor). The socket file is checked only with
// the default dialer, since a custom Dial may not use a file at all; the
// peer's credentials are checked on any connection that has a descriptor.
func (c *Client) connect(ctx context.Context) error {
	dialTimeout := c.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	dial, uid := c.Dial, myUID()
	if dial == nil {
		if err := checkSocketFile(c.Socket, uid); err != nil {
			return err
		}
		dial = dialUnix
	}
	nc, err := dial(dctx, c.Socket)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		return newDialError(c.Socket, err)
	}
	if err := checkPeer(c.Socket, nc, uid); err != nil {
		nc.Close()
		return err
	}
	c.conn, c.r = nc, bufio.NewReaderSize(nc, clientBufferSize)
	return nil
}

// roundTrip writes line and reads the answer within ctx. sent reports
// whether the whole line reached the socket.
func (c *Client) roundTrip(ctx context.Context, line []byte) (resp *Response, sent bool, err error) {
	nc := c.conn
	dl, _ := ctx.Deadline()
	nc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer func() {
		switch {
		case !stop() && err == nil:
			c.drop() // the interrupt may land on a later call: do not keep nc
		case err == nil:
			// Disarm the deadline: on Linux it is a timer that would shut the
			// idle kept connection down and cost the next call a redial.
			nc.SetDeadline(time.Time{})
		}
	}()
	if _, err := nc.Write(line); err != nil {
		// A daemon that refused the connection (busy, shutting down) may
		// have said why before closing; that answer beats "broken pipe".
		if resp, rerr := c.readResponse(); rerr == nil {
			return resp, true, nil
		}
		return nil, false, err
	}
	resp, err = c.readResponse()
	return resp, true, err
}

// readResponse reads and decodes one answer line.
func (c *Client) readResponse() (*Response, error) {
	frame, err := readFrame(c.r)
	if errors.Is(err, io.EOF) && len(frame) == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp := new(Response)
	if err := json.Unmarshal(frame, resp); err != nil {
		return nil, fmt.Errorf("daemon sent an unreadable answer: %w", err)
	}
	return resp, nil
}

// drop closes the kept connection, if any.
func (c *Client) drop() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.r = nil, nil
	return err
}

// failure puts a transport error in the user's terms.
func (c *Client) failure(ctx context.Context, op Op, timeout time.Duration, err error) error {
	var de *dialError
	switch {
	case errors.As(err, &de), errors.Is(err, ErrImpostor):
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%q call to the daemon at %s: %w", op, c.Socket, ctx.Err())
	case ctx.Err() != nil, errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's deadline is the context's, and may fire first.
		return noAnswerError(c.Socket, op, timeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("daemon at %s closed the connection during %q (it may be shutting down; retry): %w", c.Socket, op, err)
	}
	return fmt.Errorf("%q call to the daemon at %s: %w", op, c.Socket, err)
}

// answerError returns the *Error of an ok:false answer, or nil. An answer
// that fails without saying how (another daemon's bug, a fuzzer's input)
// is reported as internal.
func answerError(resp *Response) error {
	if resp.OK {
		return nil
	}
	if resp.Error == nil {
		resp.Error = &Error{Kind: ErrInternal, Message: "the daemon answered ok:false without an error"}
	}
	if resp.Error.Kind == "" { // callers switch on the kind: never hand them an empty one
		resp.Error.Kind = ErrInternal
		resp.Error.Message = "the daemon answered ok:false without an error kind: " + resp.Error.Message
	}
	return resp.Error
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.Call(ctx, &Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, missingField(OpStatus, "status")
	}
	return resp.Status, nil
}

// Stats asks for the daemon's transfer counters.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	resp, err := c.Call(ctx, &Request{Op: OpStats})
	if err != nil {
		return nil, err
	}
	if resp.Stats == nil {
		return nil, missingField(OpStats, "stats")
	}
	return resp.Stats, nil
}

// Upload hands the daemon entries whose intents are already in the spool.
func (c *Client) Upload(ctx context.Context, entries []UploadEntry) (*UploadResult, error) {
	return c.UploadFrom(ctx, entries, 0)
}

// UploadFrom is Upload for entries a running build made: buildPid names
// it (cargo, the go command), and the daemon's uploads wait until it ends.
func (c *Client) UploadFrom(ctx context.Context, entries []UploadEntry, buildPid int) (*UploadResult, error) {
	resp, err := c.Call(ctx, &Request{Op: OpUpload, Upload: &UploadArgs{Entries: entries, BuildPid: buildPid}})
	if err != nil {
		return nil, err
	}
	if resp.Upload == nil {
		return nil, missingField(OpUpload, "upload")
	}
	return resp.Upload, nil
}

// RemoteCheck asks whether key exists remotely, letting the daemon spend up
// to deadline (DefaultRemoteCheckTimeout if zero) on it; a hit is in the
// local store when it returns true. The call itself waits a little longer
// than deadline, so the daemon's answer wins over the client's timeout.
func (c *Client) RemoteCheck(ctx context.Context, key string, deadline time.Duration) (bool, error) {
	if deadline <= 0 {
		deadline = DefaultRemoteCheckTimeout
	}
	req := &Request{Op: OpRemoteCheck, RemoteCheck: &RemoteCheckArgs{Key: key, DeadlineMs: deadline.Milliseconds()}}
	resp, err := c.call(ctx, req, deadline+remoteCheckMargin)
	if err != nil {
		return false, err
	}
	if resp.Found == nil {
		return false, missingField(OpRemoteCheck, "found")
	}
	return *resp.Found, nil
}

// Prefetch asks the daemon to download keys into the store in the background.
func (c *Client) Prefetch(ctx context.Context, keys []string) error {
	_, err := c.Call(ctx, &Request{Op: OpPrefetch, Prefetch: &PrefetchArgs{Keys: keys}})
	return err
}

// BuildStarted records the start of a build session.
func (c *Client) BuildStarted(ctx context.Context, sessionID string) error {
	_, err := c.Call(ctx, &Request{Op: OpBuildStarted, BuildStarted: &BuildStartedArgs{SessionID: sessionID}})
	return err
}

// Shutdown asks the daemon to drain and exit. It returns once the daemon has
// acknowledged; the process is still draining then.
func (c *Client) Shutdown(ctx context.Context, reason string) (*ShutdownResult, error) {
	resp, err := c.Call(ctx, &Request{Op: OpShutdown, Shutdown: &ShutdownArgs{Reason: reason}})
	if err != nil {
		return nil, err
	}
	if resp.Shutdown == nil {
		return nil, missingField(OpShutdown, "shutdown")
	}
	return resp.Shutdown, nil
}

// missingField reports a successful answer that lacks its payload: a daemon
// of another version, most likely.
func missingField(op Op, field string) error {
	return fmt.Errorf("daemon answered %q without %q; run `kache daemon restart` so client and daemon match", op, field)
}
