package uploader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestRetryFailedPutsIntentsBack: failed intents go back to the spool and
// a pool then uploads them; a corrupt record stays with the reason; a key
// with a newer intent in the spool keeps that one.
func TestRetryFailedPutsIntentsBack(t *testing.T) {
	f := newPoolFixture(t)
	failed := filepath.Join(f.spool, "failed")
	a, b := f.entry(t, "a", 100), f.entry(t, "b", 100)
	for _, e := range []Entry{a, b} {
		must(t, spool.WriteFailed(failed, spool.Intent{Key: e.Key, Path: e.Path, CreatedAt: time.Now()}, errors.New("403 (test)")))
		must(t, os.Remove(spool.File(f.spool, e.Key)))
	}
	newer := f.entry(t, "c", 50) // in the spool and in failed/ with an older path
	must(t, spool.WriteFailed(failed, spool.Intent{Key: "c", Path: "/old/path"}, errors.New("x")))
	must(t, os.WriteFile(spool.File(failed, "broken"), []byte(`{"key":"broken","raw":"\u0000","error":"decode"}`), 0o600))

	n, err := spool.RetryFailed(f.spool)
	if n != 3 || err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("RetryFailed = %d, %v; want 3 and an error naming the corrupt record", n, err)
	}
	if got := spool.Keys(failed); len(got) != 1 || got[0] != "broken" {
		t.Fatalf("failed/ holds %v, want only broken", got)
	}
	in, err := spool.ReadIntent(f.spool, "c")
	if err != nil || in.Path != newer.Path {
		t.Fatalf("intent of c = %+v, %v; want the newer path kept", in, err)
	}
	p, replayed := startPool(t, f.options(t, f.remote))
	if replayed != 3 {
		t.Fatalf("replayed %d, want 3", replayed)
	}
	testenv.WaitFor(t, 10*time.Second, "uploads done", idle(p, f.spool))
	for _, e := range []Entry{a, b, newer} {
		sameObject(t, e.Path, f.remote, e.Key)
	}
	if n, err := spool.RetryFailed(filepath.Join(f.dir, "no-spool")); n != 0 || err != nil {
		t.Fatalf("RetryFailed of a missing spool = %d, %v", n, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
