package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosDiskFull (scenario f): the cache directory sits on a small
// tmpfs that the test fills. Entries handed over before the disk filled
// are uploaded by a daemon started on the full disk; clients uploading
// while it is full (filled again, with no spare intent files holding space)
// exit 1 naming the full disk (docs/exit-codes.md), and leave
// neither a partial intent nor anything marked done; once space is back
// the same uploads go through. Mounting needs root: elsewhere the
// scenario skips, saying so.
func TestChaosDiskFull(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("scenario f needs root to mount a small tmpfs for the cache directory; run the suite as root to include it")
	}
	fig := newFigures(t, "the cache directory's filesystem full")
	srv := s3test.Start(t)
	mnt := testenv.MountTmpfs(t, t.TempDir(), pick("2m", "8m"))
	m := s3Machine(t, srv)
	m.cache = filepath.Join(mnt, "cache")
	m.set("KACHE_CACHE_DIR=" + m.cache)
	before := randomFiles(t, t.TempDir(), "full-before", pick(40, 300))
	spoolAll(t, m, before)
	fillers := []string{testenv.FillUp(t, mnt, "filler")}
	m.ok("daemon", "start")
	fig.Lost += account(t, m, srv, before, nil, 90*time.Second)
	// A client writes its intent into a spare file when there is one
	// (docs/durability.md), and a spare that still holds a finished intent
	// needs no new space: such a client succeeds on a full disk. The spares
	// go before the disk is filled again, so that every client needs space
	// (the daemon may make empty spares, which need space to be written):
	// the case under test.
	if err := os.RemoveAll(spool.SpareDir(m.paths().SpoolDir())); err != nil {
		t.Fatal(err)
	}
	fillers = append(fillers, testenv.FillUp(t, mnt, "filler2"))
	during := randomFiles(t, t.TempDir(), "full-during", pick(20, 100))
	refused := uploadsOnFullDisk(t, m, fig, srv, during)
	for _, f := range fillers {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	uploadBatch(t, m, fig, refused)
	fig.Lost += account(t, m, srv, during, nil, 90*time.Second)
	fig.Entries, fig.Rounds, fig.Faults = len(before)+len(during), 1, len(refused)
	m.ok("daemon", "stop")
}

// spoolAll hands es over with no daemon running (the intents only).
func spoolAll(t *testing.T, m *machine, es entries) {
	for k, p := range es {
		if err := spool.WriteIntent(m.paths().SpoolDir(), spool.Entry{Key: k, Path: p}, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// uploadsOnFullDisk uploads each entry alone on the full disk. Each client
// must exit 1 and say the disk is full; none may leave an intent behind,
// nor the entry on the remote. It returns the entries refused.
func uploadsOnFullDisk(t *testing.T, m *machine, fig *figures, srv *s3test.Server, es entries) entries {
	refused := entries{}
	for k, p := range es {
		r, err := m.client(kacheBin, cmdTimeout, "upload", "--key", k, p)
		fig.waited(r.took)
		if err != nil || r.code != 1 {
			t.Errorf("upload on a full disk must exit 1 (docs/exit-codes.md): %v\n%s", err, r)
		}
		if !strings.Contains(r.err, "no space left on device") {
			t.Errorf("upload on a full disk does not say the disk is full:\n%s", r)
		}
		refused[k] = p
	}
	for k := range refused {
		if _, err := os.Stat(spool.File(m.paths().SpoolDir(), k)); err == nil {
			t.Errorf("%s: an intent was left although the client reported a full disk", k)
		}
		if _, err := os.Stat(srv.ObjectPath(uploader.V2Dir + "/" + k)); err == nil {
			t.Errorf("%s: on the remote although its intent was never written", k)
		}
	}
	checkSpoolWhole(t, m)
	return refused
}

// checkSpoolWhole: every intent in the spool parses, and no temp file
// (a half-written intent) is left.
func checkSpoolWhole(t *testing.T, m *machine) {
	names, _ := os.ReadDir(m.paths().SpoolDir())
	for _, n := range names {
		key, ok := strings.CutSuffix(n.Name(), ".json")
		switch {
		case n.IsDir():
		case !ok:
			t.Errorf("spool holds %s after a full disk", n.Name())
		default:
			if _, err := spool.ReadIntent(m.paths().SpoolDir(), key); err != nil {
				t.Errorf("corrupt intent after a full disk: %v", err)
			}
		}
	}
}
