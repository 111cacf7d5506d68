package totals

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestUpdatesOfTwoWritersBothLand: two writers (a successor serving and
// its predecessor draining) each add their counts; none is overwritten.
func TestUpdatesOfTwoWritersBothLand(t *testing.T) {
	path := File(t.TempDir())
	const writers, each = 2, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := Update(path, func(t *Totals) {
					t.Counters.UploadsCompleted++
					t.Ends[map[int]string{0: "handed_over", 1: "stop"}[w]]++
				})
				if err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Counters.UploadsCompleted != writers*each || got.Ends["handed_over"] != each || got.Ends["stop"] != each {
		t.Fatalf("after %d updates by each of %d writers: %+v, ends %v", each, writers, got.Counters, got.Ends)
	}
	if got.UpdatedAt.IsZero() || got.Since.IsZero() {
		t.Errorf("since %v updated %v, want both set", got.Since, got.UpdatedAt)
	}
}

// TestUpdateRefusesASymlinkedLock: a symlink planted at the lock's path is
// not followed.
func TestUpdateRefusesASymlinkedLock(t *testing.T) {
	dir := t.TempDir()
	path := File(dir)
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, path+".lock"); err != nil {
		t.Fatal(err)
	}
	if err := Update(path, func(*Totals) {}); err == nil {
		t.Fatal("Update followed a symlink at the lock's path")
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("the symlink's target was created (%v)", err)
	}
}
