package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// flushJSON is `kache flush --json`.
type flushJSON struct {
	Confirmed, Failed, Pending int
	Entries                    []struct {
		Key, Status, Object, SHA256, Error string
		Bytes                              int64
	}
}

// TestFlushS3 runs `kache flush` against versitygw: every entry confirmed
// with the remote's own checksum (exit 0); with S3 stopped the timeout
// passes with the intents kept (exit 5), and once S3 is back they are
// confirmed; a source that vanished is a permanent failure (exit 4).
func TestFlushS3(t *testing.T) {
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	es := randomFiles(t, t.TempDir(), "fl", 5)
	m.ok("upload", "--from", batchFile(t, es))
	rep := flush(m, 0)
	confirmedAll(t, rep, es)
	inBucket(t, srv, es)

	srv.Stop()
	down := randomFiles(t, t.TempDir(), "down", 3)
	m.ok("upload", "--from", batchFile(t, down))
	r := m.expect(5, "flush", "--timeout", "2s")
	if n := m.spool(); n != 3 {
		t.Fatalf("after a flush timeout the spool holds %d intents, want 3 (nothing deleted)\n%s", n, r)
	}
	srv.Restart()
	confirmedAll(t, flush(m, 0), down)

	m.ok("daemon", "stop") // so no daemon uploads the next intent before its source goes
	src := filepath.Join(t.TempDir(), "gone")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := spool.WriteIntent(m.paths().SpoolDir(), spool.Entry{Key: "gone", Path: src}, 0); err != nil {
		t.Fatal(err)
	}
	os.Remove(src)
	rep = flush(m, 4)
	if rep.Failed != 1 || len(rep.Entries) != 1 || rep.Entries[0].Key != "gone" || rep.Entries[0].Error == "" {
		t.Fatalf("want the vanished source failed with its error: %+v", rep)
	}
	m.ok("daemon", "stop")
}

// flush runs `kache flush --json` and wants exit code.
func flush(m *machine, code int) flushJSON {
	m.t.Helper()
	var rep flushJSON
	m.decode(m.expect(code, "flush", "--json", "--timeout", "60s"), &rep)
	return rep
}

// confirmedAll fails unless every entry of es, and only they, is
// confirmed with the sha256 of its source and its v2 object.
func confirmedAll(t *testing.T, rep flushJSON, es entries) {
	t.Helper()
	if rep.Confirmed != len(es) || rep.Failed != 0 || rep.Pending != 0 || len(rep.Entries) != len(es) {
		t.Fatalf("want %d confirmed, got %+v", len(es), rep)
	}
	for _, e := range rep.Entries {
		data, err := os.ReadFile(es[e.Key])
		if err != nil {
			t.Fatalf("%s: not one of the entries handed over (%v)", e.Key, err)
		}
		sum := sha256.Sum256(data)
		if e.Status != "confirmed" || e.SHA256 != hex.EncodeToString(sum[:]) || e.Bytes != int64(len(data)) || e.Object != uploader.V2Dir+"/"+e.Key {
			t.Errorf("receipt %+v: want confirmed, %d bytes, sha256 %x, object %s/%s", e, len(data), sum, uploader.V2Dir, e.Key)
		}
	}
}

// TestFlushReadBackSlowRemote (issue 16, defect 3): 400 uploads through a
// remote with 15 ms of latency per request are all confirmed by `flush
// --timeout 5m`: the read-back honours flush's timeout, not the client's
// 5 s call timeout, and reads back concurrently.
func TestFlushReadBackSlowRemote(t *testing.T) {
	srv := s3test.Start(t)
	proxy := startDelayProxy(t, srv.Endpoint, 15*time.Millisecond)
	m := s3Machine(t, srv)
	m.set("KACHE_S3_ENDPOINT=" + proxy.endpoint())
	es := randomFiles(t, t.TempDir(), "slow", 400)
	m.ok("upload", "--from", batchFile(t, es))
	start := time.Now()
	var rep flushJSON
	m.decode(m.expect(0, "flush", "--json", "--timeout", "5m"), &rep)
	confirmedAll(t, rep, es)
	t.Logf("flush of 400 entries through a 15 ms remote: %s", time.Since(start).Round(time.Millisecond))
	m.ok("daemon", "stop")
}
