package cacheprog_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/cacheprog"
)

// script builds the go command's side of a session.
type script struct{ bytes.Buffer }

func (s *script) req(r cacheprog.Request) {
	b, _ := json.Marshal(r)
	s.Write(b)
	s.WriteString("\n\n") // as the go command writes them
}

// put writes a put of body under action, and returns its OutputID.
func (s *script) put(id int64, action string, body []byte) []byte {
	out := sha256.Sum256(body)
	s.req(cacheprog.Request{ID: id, Command: "put", ActionID: actionID(action), OutputID: out[:], BodySize: int64(len(body))})
	if len(body) > 0 {
		fmt.Fprintf(s, "%q\n", base64.StdEncoding.EncodeToString(body))
	}
	return out[:]
}

func actionID(name string) []byte { a := sha256.Sum256([]byte(name)); return a[:] }

// session runs `kache cacheprog` on input and returns its responses by ID
// (the first line apart), its stderr and its exit code.
func (r *rig) session(input []byte) (caps cacheprog.Response, resps map[int64]cacheprog.Response, stderr string, code int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kacheBin, "cacheprog")
	cmd.Env = r.goEnv(false)
	cmd.Stdin = bytes.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		r.t.Fatalf("kache cacheprog: %v", err)
	}
	code = cmd.ProcessState.ExitCode()
	resps = map[int64]cacheprog.Response{}
	sc := bufio.NewScanner(&out)
	for i := 0; sc.Scan(); i++ {
		var resp cacheprog.Response
		if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
			r.t.Fatalf("response line %q: %v", sc.Text(), err)
		}
		if i == 0 {
			caps = resp
			continue
		}
		if _, dup := resps[resp.ID]; dup {
			r.t.Fatalf("two responses for request %d", resp.ID)
		}
		resps[resp.ID] = resp
	}
	return caps, resps, errb.String(), code
}

// body reads a response's DiskPath.
func body(t *testing.T, resp cacheprog.Response) []byte {
	t.Helper()
	if !filepath.IsAbs(resp.DiskPath) {
		t.Fatalf("response %d: DiskPath %q is not absolute", resp.ID, resp.DiskPath)
	}
	b, err := os.ReadFile(resp.DiskPath)
	must(t, err)
	return b
}

// TestProtocolPipelined: the capabilities come first; puts, gets, a miss
// and an unknown command, all sent before any answer is read, are each
// answered once under their ID: every DiskPath holds its object, every
// get the OutputID and size of its put; the unknown command gets an error
// naming it and the session goes on to close (exit 0).
func TestProtocolPipelined(t *testing.T) {
	r := newRig(t)
	var in script
	bodies := map[string][]byte{"empty": nil, "small": []byte("object"), "large": bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}
	for i := range 20 {
		bodies[fmt.Sprintf("obj%d", i)] = bytes.Repeat([]byte{byte(i)}, i*1000)
	}
	outs, id := map[string][]byte{}, int64(0)
	putIDs, getIDs := map[int64]string{}, map[int64]string{}
	for name, b := range bodies {
		id++
		outs[name], putIDs[id] = in.put(id, name, b), name
	}
	for name := range bodies {
		id++
		in.req(cacheprog.Request{ID: id, Command: "get", ActionID: actionID(name)})
		getIDs[id] = name
	}
	in.req(cacheprog.Request{ID: 1000, Command: "get", ActionID: actionID("never put")})
	in.req(cacheprog.Request{ID: 1001, Command: "frob"})
	in.req(cacheprog.Request{ID: 1002, Command: "close"})

	caps, resps, stderr, code := r.session(in.Bytes())
	if code != 0 || caps.ID != 0 || strings.Join(caps.KnownCommands, ",") != "get,put,close" {
		t.Fatalf("exit %d, first line %+v; stderr:\n%s", code, caps, stderr)
	}
	for rid, name := range putIDs {
		if got := body(t, resps[rid]); !bytes.Equal(got, bodies[name]) {
			t.Errorf("put %s: DiskPath holds %d bytes, want %d", name, len(got), len(bodies[name]))
		}
	}
	for rid, name := range getIDs {
		resp := resps[rid]
		if resp.Miss || !bytes.Equal(resp.OutputID, outs[name]) || resp.Size != int64(len(bodies[name])) || resp.Time == nil {
			t.Errorf("get %s: %+v", name, resp)
		} else if got := body(t, resp); !bytes.Equal(got, bodies[name]) {
			t.Errorf("get %s: DiskPath holds %d bytes, want %d", name, len(got), len(bodies[name]))
		}
	}
	if !resps[1000].Miss {
		t.Errorf("get of a key never put: %+v, want a miss", resps[1000])
	}
	if e := resps[1001].Err; !strings.Contains(e, `unknown command "frob"`) || !strings.Contains(stderr, `unknown command "frob"`) {
		t.Errorf("unknown command: answered %q, stderr %q", e, stderr)
	}
	if _, ok := resps[1002]; !ok || len(resps) != len(putIDs)+len(getIDs)+3 {
		t.Errorf("%d responses, close answered: %v", len(resps), ok)
	}
}

// TestProtocolBroken: input that breaks the protocol ends the session
// with exit 2 and a message saying how; the store keeps the entries put
// before, whole, and nothing of the broken put (no entry, no temp files).
func TestProtocolBroken(t *testing.T) {
	cases := []struct {
		name, tail, want string
	}{
		{"truncated JSON", `{"ID":2,"Command":"get","ActionID":"AAA`, "truncated request"},
		{"not JSON", "hello\n", "not a JSON object"},
		{"body shorter than BodySize", putHead(100) + `"` + base64.StdEncoding.EncodeToString([]byte("only ten b")) + "\"\n", "shorter than its BodySize 100"},
		{"body cut off", putHead(100) + `"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 60)), "body truncated"},
		{"body missing", putHead(100) + `{"ID":3,"Command":"close"}` + "\n", "expected its body"},
		{"body longer than BodySize", putHead(3) + `"` + base64.StdEncoding.EncodeToString([]byte("four")) + "\"\n", "longer than its BodySize 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.t = t
			var in script
			good := in.put(1, "good", []byte("a good object"))
			in.WriteString(c.tail)
			_, resps, stderr, code := r.session(in.Bytes())
			if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "GOCACHEPROG protocol error") {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, c.want)
			}
			if resps[1].DiskPath == "" {
				t.Errorf("the good put before was not answered: %+v", resps[1])
			}
			storeIsClean(t, r, []string{cacheprog.Key(actionID("good"))})
			var again script
			again.req(cacheprog.Request{ID: 1, Command: "get", ActionID: actionID("good")})
			again.req(cacheprog.Request{ID: 2, Command: "close"})
			_, resps, _, code = r.session(again.Bytes())
			if code != 0 || !bytes.Equal(resps[1].OutputID, good) || string(body(t, resps[1])) != "a good object" {
				t.Errorf("the good entry after the broken session: exit %d, %+v", code, resps[1])
			}
		})
	}
}

// putHead is the request line of a put of size bytes under "broken".
func putHead(size int64) string {
	b, _ := json.Marshal(cacheprog.Request{ID: 2, Command: "put", ActionID: actionID("broken"), OutputID: actionID("out"), BodySize: size})
	return string(b) + "\n\n"
}

// storeIsClean checks the store holds exactly keys, and no temp files.
func storeIsClean(t *testing.T, r *rig, keys []string) {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(r.cacheDir, "store"))
	must(t, err)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if strings.Join(names, ",") != strings.Join(keys, ",") {
		t.Errorf("store holds %v, want %v", names, keys)
	}
}
