package rpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes, through a read buffer of fuzzed
// size and a small shared budget, to the server's frame reader. Frames must
// never hold a newline, must put the input back together, and the budget
// must never be overdrawn and must be whole again after release.
func FuzzReadFrame(f *testing.F) {
	for _, seed := range []string{"", "\n", "a\nb", statusLine + statusLine, "\r\n\r\n", string(bytes.Repeat([]byte("x"), 5000)) + "\ny"} {
		f.Add([]byte(seed), uint8(0), uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data []byte, bufSize uint8, budgetSize uint16) {
		b := &budget{max: int64(budgetSize)}
		fr := frameReader{r: bufio.NewReaderSize(bytes.NewReader(data), 16+int(bufSize)), budget: b}
		var rebuilt []byte
		for {
			line, err := fr.next()
			if bytes.IndexByte(line, '\n') >= 0 || len(line) > MaxFrame {
				t.Fatalf("frame %q holds a newline or is over the cap", line)
			}
			if u := b.used.Load(); u > b.max || u < 0 {
				t.Fatalf("budget at %d of %d", u, b.max)
			}
			if errors.Is(err, errOverBudget) {
				break
			}
			rebuilt = append(rebuilt, line...)
			if err == nil {
				rebuilt = append(rebuilt, '\n')
				continue
			}
			if err != io.EOF {
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.Equal(rebuilt, data) {
				t.Fatalf("frames rebuild %q, want %q", rebuilt, data)
			}
			break
		}
		fr.release()
		if u := b.used.Load(); u != 0 {
			t.Fatalf("%d bytes of budget still held after release", u)
		}
	})
}

// FuzzDecodeRequest runs one line through the server's decoding and checks
// and through decoding into every argument type. Nothing may panic; a
// request the server would hand to its handler must carry the arguments its
// op needs, and must be judged the same after a re-encoding round trip.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		statusLine, "null", "[]", "{}", `{"op":"status"}`, `{"op":"nope","proto":1}`,
		`{"op":"upload","proto":1,"upload":{"entries":[{"key":"k","path":"/p"}]}}`,
		`{"op":"upload","proto":1,"upload":{"entries":[{"key":"k"}]}}`,
		`{"op":"remote_check","proto":1,"remote_check":{"key":"k","deadline_ms":-1}}`,
		`{"op":"prefetch","proto":1,"prefetch":{"keys":["a","b"]}}`,
		`{"op":"build_started","proto":1,"build_started":{"session_id":"s"}}`,
		`{"op":"shutdown","proto":1,"shutdown":{"reason":"r"},"client_epoch":1e30}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, v := range []any{new(UploadArgs), new(RemoteCheckArgs), new(PrefetchArgs), new(BuildStartedArgs), new(ShutdownArgs)} {
			json.Unmarshal(line, v)
		}
		req, resp := decodeRequest(line)
		if resp == nil {
			resp = check(req)
		}
		if resp != nil {
			if resp.OK || resp.Error == nil || resp.Error.Kind == "" || resp.Error.Message == "" {
				t.Fatalf("refusal %+v has no kind or message", resp)
			}
			return
		}
		checkArgs(t, req)
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("an accepted request does not re-encode: %v", err)
		}
		req2, resp2 := decodeRequest(again)
		if resp2 == nil {
			resp2 = check(req2)
		}
		if resp2 != nil {
			t.Fatalf("accepted %q but refused its re-encoding %q: %+v", line, again, resp2.Error)
		}
	})
}

// checkArgs asserts what check promises the handler.
func checkArgs(t *testing.T, req *Request) {
	t.Helper()
	ok := req.Proto == ProtocolVersion
	switch req.Op {
	case OpStatus, OpStats, OpShutdown:
	case OpUpload:
		ok = ok && req.Upload != nil && len(req.Upload.Entries) > 0
		for _, e := range req.Upload.Entries {
			ok = ok && e.Key != "" && e.Path != ""
		}
	case OpRemoteCheck:
		ok = ok && req.RemoteCheck != nil && req.RemoteCheck.Key != "" && req.RemoteCheck.DeadlineMs >= 0
	case OpPrefetch:
		ok = ok && req.Prefetch != nil && len(req.Prefetch.Keys) > 0
	case OpBuildStarted:
		ok = ok && req.BuildStarted != nil
	default:
		ok = false
	}
	if !ok {
		t.Fatalf("the handler would get %+v", req)
	}
}

// FuzzReadResponse feeds arbitrary bytes to the client's answer decoding:
// no panic, and a failed answer always comes with an error of some kind.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{`{"ok":true}`, `{"ok":false}`, `{"ok":false,"error":{"kind":"busy","message":"m"}}`, `{"ok":true,"found":true,"status":{"pid":1}}`, "null", "\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Client{r: bufio.NewReaderSize(bytes.NewReader(data), clientBufferSize)}
		resp, err := c.readResponse()
		if err != nil {
			return
		}
		if err := answerError(resp); !resp.OK && KindOf(err) == "" {
			t.Fatalf("failed answer %q gives error %v without a kind", data, err)
		}
	})
}
