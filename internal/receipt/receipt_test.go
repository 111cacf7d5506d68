package receipt

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
)

// TestTallyErr: the counts, and the outcome's precedence (a failure
// outranks a pending entry; all confirmed is no error).
func TestTallyErr(t *testing.T) {
	for _, c := range []struct {
		statuses []string
		want     error
	}{
		{nil, nil},
		{[]string{Confirmed, Confirmed}, nil},
		{[]string{Confirmed, Pending}, ErrPending},
		{[]string{Pending, Failed, Confirmed}, ErrFailed},
	} {
		var items []*Item
		for _, s := range c.statuses {
			items = append(items, &Item{Status: s})
		}
		r := Tally(items)
		if r.Entries == nil || r.Confirmed+r.Failed+r.Pending != len(items) {
			t.Errorf("%v: tally %+v", c.statuses, r)
		}
		if err := r.Err(); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%v: Err() = %v, want %v", c.statuses, err, c.want)
		}
	}
	if err := Tally([]*Item{{Status: Failed}, {Status: Pending}}).Err(); err.Error() != "uploads failed: 1 of 2" {
		t.Errorf("Err() = %q", err)
	}
}

// TestSnapshotSettle, on a real spool and events log: an intent in the
// spool is pending, an upload done since the last flush is confirmed,
// one done before it is not reported, a failure since it is failed; once
// the daemon removes the pending intent it settles as confirmed, or as
// failed if failed/ records it.
func TestSnapshotSettle(t *testing.T) {
	p := config.Paths{CacheDir: t.TempDir()}
	src := filepath.Join(p.CacheDir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := spool.WriteIntent(p.SpoolDir(), spool.Entry{Key: k, Path: src}, 1); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Minute)
	ev := eventlog.New(p.EventsFile(), slog.New(slog.DiscardHandler))
	ev.Record(eventlog.Event{TS: since.Add(-time.Second), Kind: eventlog.UploadDone, Key: "old"})
	ev.Record(eventlog.Event{TS: since.Add(time.Second), Kind: eventlog.UploadDone, Key: "done"})
	ev.Close()
	if err := spool.WriteFailed(p.FailedDir(), spool.Intent{Key: "bad", Path: src}, errors.New("denied")); err != nil {
		t.Fatal(err)
	}
	items := snapshot(p, since)
	got := map[string]string{}
	for _, it := range items {
		got[it.Key] = it.Status
	}
	want := map[string]string{"a": Pending, "b": Pending, "done": Confirmed, "bad": Failed}
	if len(got) != len(want) {
		t.Fatalf("snapshot = %v, want %v", got, want)
	}
	for k, s := range want {
		if got[k] != s {
			t.Errorf("%s: %q, want %q", k, got[k], s)
		}
	}
	byKey := map[string]*Item{}
	for _, it := range items {
		byKey[it.Key] = it
	}
	settle(p, byKey["a"])
	if byKey["a"].Status != Pending {
		t.Fatalf("a still in the spool settled as %s", byKey["a"].Status)
	}
	in, err := spool.ReadIntent(p.SpoolDir(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := spool.WriteFailed(p.FailedDir(), in, errors.New("too big")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := os.Remove(spool.File(p.SpoolDir(), k)); err != nil {
			t.Fatal(err)
		}
		settle(p, byKey[k])
	}
	if byKey["a"].Status != Confirmed || byKey["b"].Status != Failed || byKey["b"].Error != "too big" {
		t.Fatalf("settled a=%+v b=%+v; want a confirmed, b failed (too big)", byKey["a"], byKey["b"])
	}
}

// TestMark: a flush's end is what the next one reads; none is zero.
func TestMark(t *testing.T) {
	p := config.Paths{CacheDir: t.TempDir()}
	if at := lastFlush(p); !at.IsZero() {
		t.Fatalf("no flush yet: %v", at)
	}
	now := time.Now()
	mark(p, now)
	if at := lastFlush(p); !at.Equal(now.UTC().Round(0)) {
		t.Fatalf("lastFlush = %v, want %v", at, now)
	}
}
