package supervisor

import (
	"os"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/internal/store"
)

// memoAge is how long an unused digest memo of the wrapper is kept.
const memoAge = 14 * 24 * time.Hour

// evictStore keeps the local store within its cap, least recently used
// entries first, once the daemon has gone quiet (never on a build's
// path). An entry whose upload intent is still in the spool is kept: its
// upload reads it. The pass walks the store, so it runs beside the loop;
// it touches nothing the loop owns; close waits for it (d.bg).
func (d *Daemon) evictStore() {
	if !d.evicting.CompareAndSwap(false, true) {
		return
	}
	p, capBytes, log := d.o.Paths, d.o.Config.StoreCap, d.o.Log
	if capBytes <= 0 {
		capBytes = store.DefaultCap
	}
	d.bg.Go(func() {
		defer d.evicting.Store(false)
		pending := func(key string) bool {
			_, err := os.Lstat(filepath.Join(p.SpoolDir(), key+".json"))
			return err == nil
		}
		store.PruneOld(filepath.Join(p.CacheDir, "wrapper", "digests"), memoAge, time.Now())
		ev, err := store.Store{Dir: p.StoreDir()}.Evict(capBytes, pending, time.Now())
		if err != nil {
			log.Warn("store eviction", "err", err)
			return
		}
		if ev.Entries > 0 {
			log.Info("store evicted", "entries", ev.Entries, "bytes", ev.Bytes, "left_bytes", ev.Left.Bytes, "cap", capBytes)
		}
	})
}
