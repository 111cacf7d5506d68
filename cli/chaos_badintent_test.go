package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosBadIntents (scenario g): the spool holds what crashes and
// accidents leave: truncated and garbage intents, one naming another key,
// one nobody can read as ours, a FIFO, and temp files of crashed writers
// (one fresh, one two hours old). Some are there before the daemon starts
// (its replay meets them), some land while it runs (its watcher does).
// Good entries uploaded around them must all reach the remote; every bad
// intent must go to failed/ with a reason; the fresh temp file is left to
// its writer and the stale one removed.
func TestChaosBadIntents(t *testing.T) {
	fig := newFigures(t, "corrupt, truncated, unreadable intents and crash temp files in the spool")
	srv := s3test.Start(t)
	rounds := pick(1, 5)
	for round := range rounds {
		m := s3Machine(t, srv)
		spoolDir := m.paths().SpoolDir()
		if err := os.MkdirAll(spoolDir, 0o700); err != nil {
			t.Fatal(err)
		}
		bad := plantBad(t, spoolDir, "early")
		fresh, stale := plantTemps(t, spoolDir)
		es := randomFiles(t, t.TempDir(), "good"+string(rune('a'+round)), pick(60, 400))
		m.ok("daemon", "start")
		uploadBatch(t, m, fig, es)
		for k, v := range plantBad(t, spoolDir, "late") {
			bad[k] = v
		}
		fig.Lost += settleAround(t, m, srv, es, len(bad))
		checkQuarantined(t, m, bad)
		checkTemps(t, fresh, stale)
		fig.Entries += len(es)
		fig.Faults += len(bad) + 2
		fig.Rounds++
		m.ok("daemon", "stop")
	}
}

// settleAround waits until only the bad intents' records remain in
// failed/ and the spool is empty, and returns the good entries lost.
func settleAround(t *testing.T, m *machine, srv *s3test.Server, es entries, nbad int) int {
	testenv.WaitFor(t, 60*time.Second, "the good entries uploaded and the bad ones in failed/", func() bool {
		return m.spool() == 0 && len(m.failed()) == nbad
	})
	return lostOf(t, m, srv, es, nil)
}

// plantBad writes the bad intents, keyed bad-<tag>-<kind>, and returns
// each key with what its failed record must say.
func plantBad(t *testing.T, dir, tag string) map[string]string {
	k := func(kind string) string { return "bad-" + tag + "-" + kind }
	want := map[string]string{
		k("truncated"): "decode", k("garbage"): "decode", k("otherkey"): "does not match",
		k("relative"): "not absolute", k("fifo"): "not a regular file", k("unreadable"): "",
	}
	put := func(key string, data string) { plant(t, dir, key, []byte(data), nil) }
	put(k("truncated"), `{"key":"`+k("truncated")+`","path":"/tmp/x","created_at":"2026-`)
	put(k("garbage"), "\x00\xff\xfe garbage")
	put(k("otherkey"), `{"key":"someone-else","path":"/tmp/x"}`)
	put(k("relative"), `{"key":"`+k("relative")+`","path":"tmp/x"}`)
	if err := syscall.Mkfifo(filepath.Join(dir, k("fifo")+".json"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant(t, dir, k("unreadable"), []byte(`{"key":"`+k("unreadable")+`","path":"/etc/hostname"}`), unreadable)
	return want
}

// plant renames a bad intent into the spool whole, as a client's rename
// would land it (a running daemon's watcher must never see it half
// written or not yet made bad), after spoil, if any, has changed it.
func plant(t *testing.T, dir, key string, data []byte, spoil func(string) error) {
	tmp := filepath.Join(dir, ".kache-tmp-plant-"+key)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if spoil != nil {
		if err := spoil(tmp); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, spool.File(dir, key)); err != nil {
		t.Fatal(err)
	}
}

// unreadable makes an intent this user cannot read as its own: owned by
// another user when we are root (root reads any mode), mode 0 otherwise.
func unreadable(path string) error {
	if os.Getuid() == 0 {
		return os.Chown(path, 65534, 65534)
	}
	return os.Chmod(path, 0)
}

// plantTemps leaves two temp files of crashed writers: a fresh one (its
// writer may be alive) and one two hours old.
func plantTemps(t *testing.T, dir string) (fresh, stale string) {
	fresh = filepath.Join(dir, ".kache-tmp-crashed-fresh")
	stale = filepath.Join(dir, ".kache-tmp-crashed-stale")
	writeFile(t, fresh, []byte(`{"key":"half`))
	writeFile(t, stale, []byte(`{"key":"half`))
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	return fresh, stale
}

// checkQuarantined: every bad intent is in failed/ with its reason.
func checkQuarantined(t *testing.T, m *machine, bad map[string]string) {
	for key, reason := range bad {
		rec, err := spool.ReadFailed(m.paths().FailedDir(), key)
		if err != nil {
			t.Errorf("bad intent %s: no failed record: %v", key, err)
			continue
		}
		if rec.Error == "" || !strings.Contains(rec.Error, reason) {
			t.Errorf("bad intent %s: failed record says %q, want a reason with %q", key, rec.Error, reason)
		}
	}
}

func checkTemps(t *testing.T, fresh, stale string) {
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temp file (its writer may be alive) was removed: %v", err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("the temp file of a writer that crashed two hours ago is still there")
	}
}
