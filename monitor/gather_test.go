package monitor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
)

// TestGatherOffline: with no daemon, every tab is filled from the files.
func TestGatherOffline(t *testing.T) {
	dir := t.TempDir()
	p := config.Paths{CacheDir: dir, Socket: filepath.Join(dir, "daemon.sock")}
	src := filepath.Join(dir, "src")
	must(t, os.WriteFile(src, []byte("hello"), 0o600))
	must(t, spool.WriteIntent(p.SpoolDir(), spool.Entry{Key: "k1", Path: src}, 0))
	must(t, spool.WriteFailed(p.FailedDir(), spool.Intent{Key: "k2", Path: src}, os.ErrPermission))
	must(t, os.MkdirAll(filepath.Join(p.StoreDir(), "k3"), 0o700))
	must(t, os.WriteFile(filepath.Join(p.StoreDir(), "k3", "f"), []byte("abc"), 0o600))
	must(t, os.WriteFile(p.EventsFile(), []byte(`{"ts":"2026-11-30T10:00:00Z","kind":"upload_done","key":"k0","bytes":9}`+"\n"), 0o600))
	must(t, statefile.WriteExit(p.ExitFile(), statefile.ExitRecord{Pid: 7, Reason: "epoch_stale", Code: 75, At: time.Now()}))
	must(t, history.NewWriter(history.File(dir), 7, time.Now()).Append(history.Record{Kind: history.KindStart, How: history.HowStart}))
	must(t, buildlog.Append(BuildsFile(p), buildlog.Record{At: time.Now(), Tool: "rustc", Cargo: 99, Crate: "serde", Outcome: buildlog.LocalHit, Ms: 3, SavedMs: 2500}))

	s := Gather(context.Background(), Source{Paths: p, ServiceInstalled: func() bool { return false }})
	if s.Online || s.Offline == nil || !strings.Contains(s.Offline.Cause, "epoch mismatch restart in progress") {
		t.Fatalf("offline = %+v, want the epoch restart as the cause", s.Offline)
	}
	if s.Spool.Intents != 1 || s.Spool.Bytes != 5 || s.FailedN != 1 || s.Failed[0].Key != "k2" ||
		s.Store.Entries != 1 || s.Store.Bytes != 3 || len(s.Recent) != 1 || len(s.History) != 1 ||
		s.Build == nil || s.Build.LocalHits != 1 || s.Build.Cargo != 99 {
		t.Fatalf("snapshot from files = %+v", s)
	}
	out := Once(s)
	for _, want := range []string{"daemon: offline: epoch mismatch", "(daemon offline: read from the files on disk)",
		"1 intents waiting, 5 B", "k2", "cargo build (cargo pid 99)", "rustc calls: 1: 1 local hits", "compile time saved: 2.5 s", "serde", "upload_done     k0", "started by `kache daemon start`; killed or crashed"} {
		if !strings.Contains(out, want) {
			t.Errorf("--once output lacks %q:\n%s", want, out)
		}
	}
}

// TestSnapshotJSON: --json carries the current build.
func TestSnapshotJSON(t *testing.T) {
	b, err := json.Marshal(fixture())
	must(t, err)
	for _, want := range []string{`"build":{"cargo_pid":31337`, `"local_hits":4`, `"saved_ms":12345`, `"recent":[{"at"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
