package rpc

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FuzzServerFrame feeds arbitrary bytes to a connection, then half-closes
// it. The server must not crash, and every line it answers must be a
// response object with a boolean ok (and a kind when ok is false).
func FuzzServerFrame(f *testing.F) {
	for _, seed := range []string{
		statusLine,
		statusLine + statusLine,
		"{not json\n" + statusLine,
		`{"op":"upload","proto":1,"upload":{"entries":[{"key":"k","path":"/p"}]}}` + "\n",
		`{"op":"remote_check","proto":1,"remote_check":{"key":"hit","deadline_ms":1}}`,
		`{"op":"nope","proto":1}` + "\n\n\r\n",
		`{"op":"status","proto":7}` + "\n",
		"\x00\xff\n[]\nnull\n\"s\"\n1e999\n",
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f, &recorder{}, ServerOptions{WriteTimeout: 5 * time.Second})
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("unix", ts.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			nc.Write(data)
			nc.(*net.UnixConn).CloseWrite()
		}()
		checkResponses(t, bufio.NewReader(nc))
		<-wrote
	})
}

// checkResponses reads lines until the server closes and validates each.
func checkResponses(t *testing.T, r *bufio.Reader) {
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			checkResponseLine(t, line)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Fatalf("reading responses: %v", err)
		}
	}
}

func checkResponseLine(t *testing.T, line []byte) {
	if !strings.HasSuffix(string(line), "\n") {
		t.Fatalf("response line %q is not newline-terminated", line)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		t.Fatalf("response %q is not a JSON object: %v", line, err)
	}
	var ok bool
	if err := json.Unmarshal(raw["ok"], &ok); err != nil {
		t.Fatalf("response %q has no boolean ok", line)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q does not decode: %v", line, err)
	}
	if !ok && (resp.Error == nil || resp.Error.Kind == "") {
		t.Fatalf("failed response %q carries no error kind", line)
	}
}
