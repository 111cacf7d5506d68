package wrapper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestStoreDiskFull: a full disk under kache never fails a build. The
// fixture workspace is built through kache with the store on a small
// tmpfs filled to its last block, then with the whole cache dir on one
// (the store, the manifests, rustc's identity cache and every temp file
// fail with ENOSPC; builds.jsonl alone was given room beforehand, so the
// test can read what kache recorded). Each build succeeds with the
// artifacts and program output of a build without kache, every cacheable
// crate is compiled and recorded as a miss not stored for want of space,
// and no partial entry is left in the store. Mounting needs root: without
// it the test skips, saying so.
func TestStoreDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("real cargo builds")
	}
	r := newRig(t)
	ws := r.workspace("ws", "ws")
	r.cargo(ws, false, "build")
	plainOut, plainDeps := appOut(r, ws), deps(t, ws)

	var cargos []int
	t.Run("store disk full", func(t *testing.T) {
		store := filepath.Join(r.cacheDir, "store")
		must(t, os.MkdirAll(store, 0o700))
		testenv.MountTmpfs(t, store, "1m")
		testenv.FillUp(t, store, ".filler")
		cargos = append(cargos, fullBuild(t, r, ws, plainOut, plainDeps))
		checkNoEntries(t, store)
	})

	t.Run("cache dir disk full", func(t *testing.T) {
		mnt := filepath.Join(r.root, "full")
		must(t, os.MkdirAll(mnt, 0o700))
		testenv.MountTmpfs(t, mnt, "1m")
		r.cacheDir, r.seen = filepath.Join(mnt, "kache"), 0
		store := filepath.Join(r.cacheDir, "store")
		must(t, os.MkdirAll(store, 0o700))
		testenv.Reserve(t, filepath.Join(r.cacheDir, "builds.jsonl"), 256<<10)
		testenv.FillUp(t, mnt, ".filler")
		cargos = append(cargos, fullBuild(t, r, ws, plainOut, plainDeps))
		checkNoEntries(t, store)
	})
	if len(cargos) == 2 && cargos[0] == cargos[1] {
		t.Errorf("two cargo builds recorded with one cargo_pid %d", cargos[0])
	}
}

// fullBuild builds ws from clean through kache on a full disk and checks
// the build against one without kache and the records kache left, which
// all name one cargo process (the build, as the monitor groups it); it
// returns that process's pid.
func fullBuild(t *testing.T, r *rig, ws, plainOut string, plainDeps map[string]string) int {
	t.Helper()
	r.cargo(ws, false, "clean")
	out := r.cargo(ws, true, "build")
	if got := appOut(r, ws); got != plainOut {
		t.Errorf("program output through kache on a full disk %q, without kache %q", got, plainOut)
	}
	if got := deps(t, ws); jsonOf(got) != jsonOf(plainDeps) {
		t.Errorf("artifacts differ from a build without kache:\nwith    %v\nwithout %v", got, plainDeps)
	}
	recs := r.records()
	n := counts(recs)
	if n[buildlog.Miss] < 25 || n[buildlog.LocalHit]+n[buildlog.RemoteHit] != 0 {
		t.Errorf("on a full disk: %v, want every cacheable crate compiled (cargo said:\n%s)", n, out)
	}
	cargo := 0
	for i, rec := range recs {
		if cargo == 0 {
			cargo = rec.Cargo
		}
		if rec.Cargo == 0 || rec.Cargo != cargo {
			t.Errorf("%s: cargo_pid %d, the build's first record says %d", rec.Crate, rec.Cargo, cargo)
		}
		if rec.Crate == "" || rec.Outcome != buildlog.Miss {
			continue
		}
		if i == len(recs)-1 {
			t.Logf("%d records %v; the last: %s %s", len(recs), n, rec.Crate, rec.Reason)
		}
		if !strings.HasPrefix(rec.Reason, "not stored: ") || !strings.Contains(rec.Reason, "no space left on device") {
			t.Errorf("%s: reason %q, want not stored for want of space", rec.Crate, rec.Reason)
		}
	}
	return cargo
}

// checkNoEntries: the full store holds no entry and no temp directory.
func checkNoEntries(t *testing.T, store string) {
	t.Helper()
	names, err := os.ReadDir(store)
	must(t, err)
	for _, e := range names {
		if e.Name() != ".filler" {
			t.Errorf("the full store holds %s", e.Name())
		}
	}
}
