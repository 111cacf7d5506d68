// Package cacheprog is kache as the go command's cache program
// (GOCACHEPROG="kache cacheprog"): it answers the go command's get, put
// and close requests from the local store that the Rust wrapper uses,
// asks the remote through the daemon on a local miss, and hands every
// put to the daemon for upload. Like the Rust wrapper it never fails a
// build on kache's account: its own errors are misses, or puts kept
// locally; only input that breaks the protocol ends the session with an
// error. The protocol is the one of cmd/go/internal/cacheprog (Go 1.24+).
package cacheprog

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Commands the go command sends.
const (
	cmdGet   = "get"
	cmdPut   = "put"
	cmdClose = "close"
)

// Request is one request of the go command: a JSON object on one line; a
// put with BodySize > 0 is followed by its body as a base64 JSON string.
type Request struct {
	ID       int64
	Command  string
	ActionID []byte `json:",omitempty"`
	OutputID []byte `json:",omitempty"`
	BodySize int64  `json:",omitempty"`
}

// Response answers the request with the same ID; the first response
// (ID 0) lists the commands kache knows.
type Response struct {
	ID            int64
	Err           string     `json:",omitempty"`
	KnownCommands []string   `json:",omitempty"`
	Miss          bool       `json:",omitempty"`
	OutputID      []byte     `json:",omitempty"`
	Size          int64      `json:",omitempty"`
	Time          *time.Time `json:",omitempty"`
	DiskPath      string     `json:",omitempty"`
}

// ErrProtocol marks input that is not the protocol: the session ends.
var ErrProtocol = errors.New("GOCACHEPROG protocol error")

// maxRequestLine bounds one request line: a request is a few hundred
// bytes; the bodies come on their own lines.
const maxRequestLine = 1 << 20

// maxActionID bounds an ActionID or OutputID (the go command's are 32
// bytes), so the store key stays a valid key.
const maxActionID = 64

func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// reader reads requests and put bodies from the go command.
type reader struct{ br *bufio.Reader }

func newReader(r io.Reader) *reader { return &reader{br: bufio.NewReaderSize(r, 256<<10)} }

// next returns the next request; io.EOF at a request boundary means the
// go command closed its end.
func (r *reader) next() (*Request, error) {
	for {
		line, err := r.line()
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return nil, err
			}
			continue // the go command writes a blank line after each request
		}
		if req, ok := parseGet(line); ok {
			return req, nil
		}
		var req Request
		if jerr := json.Unmarshal(line, &req); jerr != nil {
			if err != nil {
				return nil, protocolErr("truncated request %.80q at end of input", line)
			}
			return nil, protocolErr("request is not a JSON object: %.80q (%v)", line, jerr)
		}
		return &req, nil
	}
}

// getPrefix and getMiddle frame a get as the go command writes it
// (json.Marshal of its request: ID, Command, ActionID, nothing else).
const (
	getPrefix = `{"ID":`
	getMiddle = `,"Command":"get","ActionID":"`
)

// parseGet reads a get written exactly as the go command writes one,
// without encoding/json's reflection: a warm build sends one per action.
// Anything else (another command, other fields or spacing, any escape)
// is not ok, and goes to json.Unmarshal, which gives the same request
// for every line parseGet accepts.
func parseGet(line []byte) (*Request, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimRight(line, " \t\r\n"), []byte(getPrefix))
	if !ok {
		return nil, false
	}
	i := 0
	for i < len(rest) && i < 19 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || (rest[0] == '0' && i > 1) {
		return nil, false
	}
	id, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return nil, false
	}
	b64, ok := bytes.CutPrefix(rest[i:], []byte(getMiddle))
	if !ok || !bytes.HasSuffix(b64, []byte(`"}`)) {
		return nil, false
	}
	b64 = b64[:len(b64)-2]
	if len(b64) == 0 || len(b64) > 4*maxActionID {
		return nil, false
	}
	for _, c := range b64 {
		if !base64Byte[c] {
			return nil, false
		}
	}
	aid := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(aid, b64)
	if err != nil {
		return nil, false
	}
	return &Request{ID: id, Command: cmdGet, ActionID: aid[:n]}, true
}

// base64Byte tells the bytes of standard base64's alphabet (the decoder
// would skip a \r or \n, which JSON refuses inside a string).
var base64Byte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()

// line reads one line, at most maxRequestLine long.
func (r *reader) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRequestLine {
			return nil, protocolErr("request line longer than %d bytes", maxRequestLine)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// body copies a put's body, size bytes, from its base64 JSON string into
// w. Input that is not such a string, or of another length, is a protocol
// error; an error of w's is returned as is, after the body was read
// through, so the stream stays in step.
func (r *reader) body(id, size int64, w io.Writer) (int64, error) {
	if err := r.openQuote(id); err != nil {
		return 0, err
	}
	s := &stringReader{br: r.br}
	lw := &limitWriter{w: w, left: size}
	n, err := io.Copy(lw, base64.NewDecoder(base64.StdEncoding, s))
	if err == nil && lw.werr != nil {
		err = lw.werr
	}
	var corrupt base64.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return n, protocolErr("request %d: body truncated after %d of %d bytes", id, n, size)
	case errors.As(err, &corrupt):
		return n, protocolErr("request %d: body is not base64 (%v)", id, err)
	case lw.over:
		return n, protocolErr("request %d: body longer than its BodySize %d", id, size)
	case err == nil && n < size:
		return n, protocolErr("request %d: body of %d bytes, shorter than its BodySize %d", id, n, size)
	}
	return n, err
}

// openQuote skips the blank line before a body and its opening quote.
func (r *reader) openQuote(id int64) error {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return protocolErr("request %d: input ends before its body", id)
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			return nil
		}
		return protocolErr("request %d: expected its body (a base64 JSON string) after the request, got %q", id, c)
	}
}

// stringReader reads up to the closing quote of a JSON string of base64,
// which needs no escapes; EOF before it is io.ErrUnexpectedEOF.
type stringReader struct {
	br   *bufio.Reader
	done bool
}

func (s *stringReader) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if s.br.Buffered() == 0 {
		if _, err := s.br.Peek(1); err != nil {
			return 0, io.ErrUnexpectedEOF
		}
	}
	buf, _ := s.br.Peek(min(s.br.Buffered(), len(p)))
	if i := bytes.IndexByte(buf, '"'); i >= 0 {
		buf, s.done = buf[:i], true
		n := copy(p, buf)
		_, _ = s.br.Discard(n + 1)
		return n, nil
	}
	n := copy(p, buf)
	_, _ = s.br.Discard(n)
	return n, nil
}

// limitWriter passes at most left bytes to w and notes more; after w
// fails it swallows the rest, keeping w's error.
type limitWriter struct {
	w    io.Writer
	left int64
	over bool
	werr error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.over = true
		return 0, errors.New("body longer than BodySize")
	}
	l.left -= int64(len(p))
	if l.werr == nil {
		_, l.werr = l.w.Write(p)
	}
	return len(p), nil
}
