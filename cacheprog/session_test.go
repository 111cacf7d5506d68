package cacheprog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/store"
)

// In-process sessions, for what the binary cannot be made to meet here
// (the tests run as root, so a read-only store is not one): a store that
// fails, a daemon that hangs or is down.

func putLines(id int64, action string, body []byte) string {
	out := sha256.Sum256(body)
	a := sha256.Sum256([]byte(action))
	b, _ := json.Marshal(Request{ID: id, Command: cmdPut, ActionID: a[:], OutputID: out[:], BodySize: int64(len(body))})
	return fmt.Sprintf("%s\n\n%q\n", b, base64.StdEncoding.EncodeToString(body))
}

func getLine(id int64, action string) string {
	a := sha256.Sum256([]byte(action))
	b, _ := json.Marshal(Request{ID: id, Command: cmdGet, ActionID: a[:]})
	return string(b) + "\n"
}

const closeLine = `{"ID":99,"Command":"close"}` + "\n"

// serve runs a session on input and returns its responses by ID.
func serve(t *testing.T, o Options, input string) (map[int64]Response, error) {
	t.Helper()
	var out bytes.Buffer
	o.Stdin, o.Stdout, o.Stderr = strings.NewReader(input), &out, io.Discard
	err := Serve(context.Background(), o)
	resps := map[int64]Response{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r Response
		if jerr := json.Unmarshal(sc.Bytes(), &r); jerr != nil {
			t.Fatalf("response %q: %v", sc.Text(), jerr)
		}
		resps[r.ID] = r
	}
	return resps, err
}

// TestStoreFailsPutKeptInScratch: a store that cannot be written (its
// directory is a file) still answers a put with a file holding the
// object, for the session; the get that follows misses; the session ends
// cleanly and its scratch files are gone after close.
func TestStoreFailsPutKeptInScratch(t *testing.T) {
	dir := t.TempDir()
	blocked := filepath.Join(dir, "store")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Store: store.Store{Dir: blocked}, UseStore: true, CacheDir: dir}
	var in strings.Builder
	in.WriteString(putLines(1, "a", []byte("kept anyway")))
	in.WriteString(getLine(2, "a"))
	in.WriteString(closeLine)
	o.Stdin = strings.NewReader(in.String())
	pr, pw := io.Pipe()
	o.Stdout = pw
	lines := bufio.NewScanner(pr)
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), o); pw.Close() }()
	var put Response
	for lines.Scan() {
		var r Response
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.ID == 1 {
			put = r
			b, err := os.ReadFile(r.DiskPath) // read before close, as the go command does
			if err != nil || string(b) != "kept anyway" {
				t.Errorf("put's DiskPath %s: %q, %v", r.DiskPath, b, err)
			}
		}
		if r.ID == 2 && !r.Miss {
			t.Errorf("get after a put the store refused: %+v, want a miss", r)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(put.DiskPath); !os.IsNotExist(err) {
		t.Errorf("scratch file %s still there after close: %v", put.DiskPath, err)
	}
	var rec buildlog.Record
	_ = buildlog.Read(filepath.Join(dir, "builds.jsonl"), func(r buildlog.Record) { rec = r })
	if rec.Go == nil || rec.Go.Puts != 1 || rec.Go.Misses != 1 || rec.Exit != 0 || rec.Reason == "" {
		t.Errorf("record %+v, want 1 put, 1 miss, exit 0 and why the store failed", rec)
	}
}

// TestStoreFailsMidBody: a write that fails part way through a body
// (/dev/full: no space) moves to a scratch file, which gets the whole
// object.
func TestStoreFailsMidBody(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	var sc scratch
	defer sc.remove()
	p := &pending{f: full, inStore: true, scratch: sc.file}
	if _, err := p.Write([]byte("spilled")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte(" over")); err != nil {
		t.Fatal(err)
	}
	path, placed, _, err := p.finish()
	b, _ := os.ReadFile(path)
	if err != nil || placed || string(b) != "spilled over" || p.err == nil {
		t.Errorf("finish: %s %v %v: %q (store error %v)", path, placed, err, b, p.err)
	}
}

// slowDaemon answers nothing until released; checks fail as a downed
// daemon's do.
type slowDaemon struct {
	mu      sync.Mutex
	release chan struct{}
	got     map[string]string
}

func (d *slowDaemon) RemoteCheck(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("daemon not running")
}

func (d *slowDaemon) Upload(ctx context.Context, es map[string]string) error {
	d.mu.Lock()
	for k, v := range es {
		d.got[k] = v
	}
	d.mu.Unlock()
	select {
	case <-d.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestCloseBoundedByDaemon: a daemon that does not answer uploads holds
// close for CloseWait, no longer; every put was handed to Upload (whose
// intents come first), and the record says uploads were kept. Failed
// remote checks are misses.
func TestCloseBoundedByDaemon(t *testing.T) {
	dir := t.TempDir()
	d := &slowDaemon{release: make(chan struct{}), got: map[string]string{}}
	o := Options{Store: store.Store{Dir: filepath.Join(dir, "store")}, UseStore: true, CacheDir: dir, Daemon: d, CloseWait: 300 * time.Millisecond}
	var in strings.Builder
	for i := range 5 {
		in.WriteString(putLines(int64(i+1), fmt.Sprint(i), []byte{byte(i)}))
	}
	in.WriteString(getLine(10, "absent"))
	in.WriteString(closeLine)
	start := time.Now()
	resps, err := serve(t, o, in.String())
	took := time.Since(start)
	if err != nil || !resps[10].Miss {
		t.Fatalf("session: %v, get %+v", err, resps[10])
	}
	if _, ok := resps[99]; !ok || took > 10*time.Second {
		t.Errorf("close answered %v after %s, want within the bound", ok, took)
	}
	if len(d.got) != 5 {
		t.Errorf("%d entries handed to the daemon, want 5", len(d.got))
	}
	var rec buildlog.Record
	_ = buildlog.Read(filepath.Join(dir, "builds.jsonl"), func(r buildlog.Record) { rec = r })
	if !strings.Contains(rec.Reason, "kept in the spool") || !strings.Contains(rec.Reason, "remote checks failed") {
		t.Errorf("record reason %q, want the kept uploads and the failed check", rec.Reason)
	}
}

// TestEvictionTakesGoEntries: the store's eviction, as the daemon runs
// it, treats go entries like any: least recently used first, never one a
// pending upload holds; a lease renewal makes an entry recent again.
func TestEvictionTakesGoEntries(t *testing.T) {
	dir := t.TempDir()
	st := store.Store{Dir: filepath.Join(dir, "store")}
	var in strings.Builder
	for i := range 3 {
		in.WriteString(putLines(int64(i+1), fmt.Sprint(i), bytes.Repeat([]byte{1}, 1000)))
	}
	if _, err := serve(t, Options{Store: st, UseStore: true}, in.String()); err != nil {
		t.Fatal(err)
	}
	key := func(i int) string { a := sha256.Sum256([]byte(fmt.Sprint(i))); return Key(a[:]) }
	old := time.Now().Add(-time.Hour)
	for i := range 3 {
		if err := os.Chtimes(st.Path(key(i)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	l := startLeases(st, 0)
	l.add(key(2))
	l.renew()
	ev, err := st.Evict(0, func(k string) bool { return k == key(1) }, time.Now())
	if err != nil || ev.Entries != 1 {
		t.Fatalf("evicted %+v, %v; want the one entry neither pending nor leased", ev, err)
	}
	if _, err := os.Stat(st.Path(key(0))); !os.IsNotExist(err) {
		t.Errorf("entry 0 kept: %v", err)
	}
	for _, i := range []int{1, 2} {
		if _, ok := lookup(st, key(i)); !ok {
			t.Errorf("entry %d evicted", i)
		}
	}
}

// scriptedDaemon answers remote checks with the errors it is given, in
// order; nil is a hit.
type scriptedDaemon struct {
	answers []error
	asked   int
}

func (d *scriptedDaemon) RemoteCheck(context.Context, string, time.Duration) (bool, error) {
	err := d.answers[min(d.asked, len(d.answers)-1)]
	d.asked++
	return err == nil, err
}

func (d *scriptedDaemon) Upload(context.Context, map[string]string) error { return nil }

// TestRemotePauses: checks pause for a second after a failure (a downed
// daemon), but only after slowInARow checks in a row passed their
// deadline (a large download still running is no reason to stop); a
// hit resets the count.
func TestRemotePauses(t *testing.T) {
	slow := fmt.Errorf("%w: big object", ErrSlow)
	cases := []struct {
		name    string
		answers []error
		asked   int // of 6 checks, before the pause
	}{
		{"down", []error{errors.New("daemon not running")}, 1},
		{"slow", []error{slow}, slowInARow},
		{"slow, a hit between", []error{slow, slow, nil, slow, slow, nil}, 6},
	}
	for _, c := range cases {
		d := &scriptedDaemon{answers: c.answers}
		r := &remote{d: d, deadline: time.Second}
		for range 6 {
			r.check(context.Background(), "go-k")
		}
		if d.asked != c.asked {
			t.Errorf("%s: the daemon was asked %d times of 6, want %d", c.name, d.asked, c.asked)
		}
	}
}
