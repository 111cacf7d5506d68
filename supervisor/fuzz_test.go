package supervisor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/rpc"
)

// FuzzDaemonRequest decodes arbitrary bytes as a request and sends it, as
// a well-formed frame of the current protocol, to a real in-process daemon
// (directory remote, real socket). The frame decoder has its own target
// in rpc; this one reaches the handlers: every request must get an answer
// (ok, or an error with a kind), and the daemon must still be running
// afterwards. Shutdown is left out (it would end the rig, not find a bug),
// and remote-check deadlines are capped so a run stays fast.
func FuzzDaemonRequest(f *testing.F) {
	for _, seed := range []string{
		`{"op":"status"}`, `{"op":"stats"}`,
		`{"op":"build_started","build_started":{"session_id":""}}`,
		`{"op":"upload","upload":{"entries":[{"key":"k","path":"/nonexistent"}]}}`,
		`{"op":"upload","upload":{"entries":[{"key":"../../etc/passwd","path":"/etc/passwd"}]}}`,
		`{"op":"upload","upload":{"entries":[{"key":"a","path":"/"},{"key":"a","path":"/"}]}}`,
		`{"op":"remote_check","remote_check":{"key":"missing","deadline_ms":9223372036854775807}}`,
		`{"op":"remote_check","remote_check":{"key":".","deadline_ms":1}}`,
		`{"op":"prefetch","prefetch":{"keys":["a","","/abs"]}}`,
		`{"op":"status","client_epoch":-1}`, `{"op":"stats","client_epoch":9223372036854775807}`,
	} {
		f.Add([]byte(seed))
	}
	r := newRig(f, nil).start()
	r.remote.open()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req rpc.Request
		if json.Unmarshal(data, &req) != nil || req.Op == rpc.OpShutdown {
			return
		}
		req.Proto = rpc.ProtocolVersion
		if a := req.RemoteCheck; a != nil {
			a.DeadlineMs = min(max(a.DeadlineMs, 0), 200)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := r.client.Call(ctx, &req)
		if err != nil && (resp == nil || resp.Error == nil) {
			t.Fatalf("request %s got no answer: %v", data, err)
		}
		if resp != nil && !resp.OK && (resp.Error == nil || resp.Error.Kind == "") {
			t.Fatalf("request %s failed without an error kind: %+v", data, resp)
		}
		if st, err := r.status(); err != nil || st.State != "running" {
			t.Fatalf("after request %s the daemon is not running: %+v, %v", data, st, err)
		}
	})
}
