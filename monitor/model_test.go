package monitor

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/history"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/statefile"
	"github.com/kunobi-ninja/kache/internal/totals"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/muesli/termenv"
)

var update = flag.Bool("update", false, "rewrite the golden screens")

func TestMain(m *testing.M) {
	time.Local = time.UTC                   // golden screens show times
	lipgloss.SetColorProfile(termenv.Ascii) // and no escape codes
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func fixture() Snapshot {
	last := t0.Add(-90 * time.Second)
	idle := t0.Add(9 * time.Minute)
	tot := &totals.Totals{Since: t0.Add(-48 * time.Hour), Counters: totals.Counters{UploadsCompleted: 120, UploadsSkipped: 30,
		UploadsFailed: 1, BytesUploaded: 5 << 20, RemoteHits: 80, RemoteMisses: 20, Builds: 12}, Ends: map[string]int64{"idle": 3, "killed": 1}}
	gens := []history.Generation{
		{Pid: 4242, Started: t0.Add(-time.Hour), Running: true, Start: &history.Record{How: "auto:upload", Version: "v1.2.0"}},
		{Pid: 4100, Started: t0.Add(-3 * time.Hour), Start: &history.Record{How: history.HowStart, Version: "v1.1.0"},
			End: &history.Record{TS: t0.Add(-2 * time.Hour), Reason: "epoch_stale", Code: 75}},
		{Pid: 4000, Started: t0.Add(-5 * time.Hour), Start: &history.Record{How: history.HowService, Version: "v1.1.0"}},
	}
	return Snapshot{At: t0, Binary: Binary{Version: "v1.2.0", Epoch: 1796000000000000000, Exe: "/usr/local/bin/kache"},
		Online: true,
		Daemon: &rpc.Status{Pid: 4242, Version: "v1.2.0", Epoch: 1796000000000000000, State: "running",
			StateSince: t0.Add(-time.Hour), StateCause: "listening on /home/u/.cache/kache/daemon.sock",
			StartedAt: t0.Add(-time.Hour), UptimeMs: 3600000, IdleDeadline: &idle, Remote: "s3://bucket/ci/",
			Queue: rpc.QueueStats{Queued: 3, InFlight: 2, Spool: 5, Breaker: "closed"}},
		Stats: &rpc.Stats{Counters: rpc.Counters{UploadsCompleted: 10, UploadsSkipped: 2, BytesUploaded: 300 << 10, RemoteHits: 7, RemoteMisses: 3,
			Builds: 2}, LastBuildAt: &last, LastBuildSession: "ci-77"},
		Totals:    tot,
		Store:     Store{Entries: 42, Bytes: 12 << 20},
		Uploading: []Flight{{Key: "k-10", Bytes: 3 << 20, Sent: 7 << 18, Since: t0.Add(-7 * time.Second)}, {Key: "k-11", Bytes: 900, Since: t0.Add(-time.Second)}},
		Spool:     spool.Summary{Intents: 5, Bytes: 80 << 10, Oldest: t0.Add(-12 * time.Second)},
		Failed:    []Failed{{Key: "k-bad", Error: "permanent: source /tmp/x vanished before upload", FailedAt: t0.Add(-time.Hour)}}, FailedN: 1,
		Recent: []Event{{TS: t0.Add(-2 * time.Second), Kind: "upload_done", Key: "k-9", Bytes: 4096, Ms: 35},
			{TS: t0.Add(-3 * time.Second), Kind: "upload_skipped", Key: "k-8", Ms: 4},
			{TS: t0.Add(-9 * time.Second), Kind: "upload_retry", Key: "k-7", Error: "connection refused", Ms: 1002}},
		History: gens,
		Build:   buildFixture(),
	}
}

func buildFixture() *Build {
	b := &Build{Cargo: 31337, Started: t0.Add(-40 * time.Second), Last: t0.Add(-2 * time.Second)}
	b.Counts = buildlog.Counts{Invocations: 9, LocalHits: 4, RemoteHits: 1, Misses: 2, Passthrough: 2,
		Reasons: map[string]int{"probe (-vV)": 1, "no --out-dir (-o)": 1}, HitRate: 5.0 / 7, SavedMs: 12345, TookMs: 23456}
	b.Recent = []Invocation{{At: t0.Add(-3 * time.Second), Crate: "app", Outcome: "miss", Ms: 1234},
		{At: t0.Add(-9 * time.Second), Crate: "serde_derive", Outcome: "local_hit", Ms: 12},
		{At: t0.Add(-10 * time.Second), Crate: "", Outcome: "passthrough", Reason: "probe (-vV)", Ms: 40}}
	return b
}

func offlineFixture() Snapshot {
	s := fixture()
	s.Online, s.Daemon, s.Stats = false, nil, nil
	s.Offline = &Offline{Cause: "no daemon runs: check `kache daemon log` for startup errors",
		LastExit: &statefile.ExitRecord{Pid: 4242, Reason: "idle", At: t0.Add(-time.Minute)}}
	s.History[0].Running = false
	s.History[0].End = &history.Record{TS: t0.Add(-time.Minute), Reason: "idle"}
	return s
}

func drainingFixture() Snapshot {
	s := fixture()
	d := *s.Daemon
	d.State, d.StateSince, d.StateCause, d.IdleDeadline = "draining", t0.Add(-4*time.Second), "kache daemon stop", nil
	s.Daemon = &d
	return s
}

// screen drives the model like a terminal would: a size, then keys.
func screen(s Snapshot, keys ...string) string {
	var m tea.Model = NewModel(s, func() Snapshot { return s })
	m, _ = m.Update(tea.WindowSizeMsg{Width: 110, Height: 24})
	for _, k := range keys {
		m, _ = m.Update(keyMsg(k))
	}
	return m.View()
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func TestGoldenScreens(t *testing.T) {
	cases := map[string]string{
		"online_build":      screen(fixture()),
		"online_transfers":  screen(fixture(), "3"),
		"online_lifecycle":  screen(fixture(), "right", "right", "right"),
		"offline_store":     screen(offlineFixture(), "2"),
		"offline_transfers": screen(offlineFixture(), "3"),
		"draining":          screen(drainingFixture(), "3"),
		"help":              screen(fixture(), "?"),
		"once_offline":      Once(offlineFixture()),
	}
	for name, got := range cases {
		golden(t, name, got)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./monitor -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test ./monitor -update rewrites it):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestKeys(t *testing.T) {
	m := NewModel(fixture(), fixture)
	for _, c := range []struct {
		key  tea.KeyMsg
		want int
	}{{keyMsg("4"), 3}, {keyMsg("right"), 0}, {keyMsg("left"), 3}, {keyMsg("1"), 0}} {
		next, _ := m.Update(c.key)
		m = next.(Model)
		if m.tab != c.want {
			t.Fatalf("after %v: tab %d, want %d", c.key, m.tab, c.want)
		}
	}
	if _, cmd := m.Update(keyMsg("q")); cmd == nil {
		t.Fatal("q does not quit")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q does not quit")
	}
}
