package uploader

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestPoolKeepsSpareIntentFiles: a started pool makes spareLow spares
// off the client's path; clients' intents take them; finished intents go
// back to the spares (the same inodes), never past spareHigh.
func TestPoolKeepsSpareIntentFiles(t *testing.T) {
	f := newPoolFixture(t)
	dir := spool.SpareDir(f.spool)
	p, _ := startPool(t, f.options(t, f.remote))
	testenv.WaitFor(t, 10*time.Second, "the first spares", func() bool { return atomicfile.CountSpares(dir, spareHigh+1) >= spareLow })

	var entries []Entry
	for i := range 40 { // each entry() writes its intent: 40 spares taken
		entries = append(entries, f.entry(t, fmt.Sprintf("spare-%02d", i), 64))
	}
	if n := atomicfile.CountSpares(dir, spareHigh+1); n > spareLow-40 {
		t.Errorf("%d spares after 40 intents, want at most %d: the clients' writes did not take them", n, spareLow-40)
	}
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "all uploads done", idle(p, f.spool))
	testenv.WaitFor(t, 10*time.Second, "the spares given back", func() bool { return atomicfile.CountSpares(dir, spareHigh+1) >= spareLow })
	for _, e := range entries {
		sameObject(t, e.Path, f.remote, e.Key)
		if _, err := os.Stat(spool.File(f.spool, e.Key)); !os.IsNotExist(err) {
			t.Errorf("intent %s still in the spool (%v)", e.Key, err)
		}
	}
}

// TestSparesStopAtTheHighMark: past spareHigh, finished intents are
// removed, not kept.
func TestSparesStopAtTheHighMark(t *testing.T) {
	dir := t.TempDir()
	s := newSpares(dir)
	if _, err := atomicfile.AddSpares(s.dir, spareHigh); err != nil {
		t.Fatal(err)
	}
	s.estimate() // as the keeper does when it starts
	path := spool.File(dir, "k")
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.done(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("intent still there: %v", err)
	}
	if n := atomicfile.CountSpares(s.dir, spareHigh+10); n != spareHigh {
		t.Fatalf("%d spares, want %d", n, spareHigh)
	}
}
