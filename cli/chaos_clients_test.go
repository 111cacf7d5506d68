package cli_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestChaosKillClients (scenario b): `kache upload` processes are
// SIGKILLed at random moments of their short lives: before the intent,
// between the intent and the call (single entries), and in the middle of a
// batch. An entry is handed over once its intent is in the spool; right
// after the kills, every key with an intent or on the remote is noted, and
// the running daemon must then bring each of them to the remote without
// any client's help (it notices intents nobody announced).
func TestChaosKillClients(t *testing.T) {
	fig := newFigures(t, "clients SIGKILLed in the middle of kache upload")
	rng := seeded(2)
	srv := s3test.Start(t)
	m := s3Machine(t, srv)
	m.ok("daemon", "start")
	rounds, n := pick(2, 10), pick(200, 1000)
	for round := range rounds {
		es := randomFiles(t, t.TempDir(), "cli"+string(rune('a'+round)), n)
		span := calibrate(t, m)
		var wg sync.WaitGroup
		slots := make(chan struct{}, 4)
		for _, b := range clientLoads(es) {
			delay := jitter(rng, span/3, 2*span*time.Duration(1+len(b)/25))
			slots <- struct{}{}
			wg.Add(1)
			go func() { defer wg.Done(); killedClient(t, m, fig, b, delay); <-slots }()
		}
		wg.Wait()
		handed := handedOver(t, m, srv, es)
		fig.Lost += account(t, m, srv, handed, nil, 60*time.Second)
		fig.Entries += len(handed)
		fig.Rounds++
	}
	if fig.Entries == 0 {
		t.Fatal("no entry was handed over before the kills: the rounds prove nothing")
	}
	m.ok("daemon", "stop")
}

// calibrate times an unkilled single-entry upload, so kill delays can
// fall across a client's whole life on this machine under its load now.
func calibrate(t *testing.T, m *machine) time.Duration {
	src := filepath.Join(t.TempDir(), "calibrate.bin")
	writeFile(t, src, []byte(src))
	r := m.ok("upload", "--key", "calibrate-"+filepath.Base(filepath.Dir(src)), src)
	return max(r.took*3/2, 5*time.Millisecond)
}

// clientLoads cuts es into what each client uploads: a quarter as single
// entries (`upload --key`), the rest in batches of 25 (`upload --from`).
func clientLoads(es entries) []entries {
	keys := slices.Sorted(maps.Keys(es))
	var out []entries
	for _, k := range keys[:len(keys)/4] {
		out = append(out, entries{k: es[k]})
	}
	rest := entries{}
	for _, k := range keys[len(keys)/4:] {
		rest[k] = es[k]
	}
	return append(out, split(rest, 25)...)
}

// killedClient starts `kache upload` for b and SIGKILLs it after delay:
// before its intent, between intent and call, or in the middle of a batch.
func killedClient(t *testing.T, m *machine, fig *figures, b entries, delay time.Duration) {
	args := []string{"upload", "--from", batchFileIn(t, b)}
	if len(b) == 1 {
		for k, p := range b {
			args = []string{"upload", "--key", k, p}
		}
	}
	cmd := exec.Command(kacheBin, args...)
	cmd.Env = m.environ()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	fig.waited(time.Since(start))
	fig.fault()
}

// handedOver is the entries of es with an intent in the spool or a
// manifest on the remote just after the kills.
func handedOver(t *testing.T, m *machine, srv *s3test.Server, es entries) entries {
	out := entries{}
	for k, p := range es {
		_, inSpool := os.Stat(filepath.Join(m.paths().SpoolDir(), k+".json"))
		_, onRemote := os.Stat(srv.ObjectPath(uploader.V2Dir + "/" + k))
		if inSpool == nil || onRemote == nil {
			out[k] = p
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(m.paths().SpoolDir(), ".kache-tmp-*"))
	t.Logf("%d of %d entries handed over; %d temp files left by killed clients", len(out), len(es), len(tmps))
	for _, f := range tmps {
		if !strings.HasPrefix(filepath.Base(f), ".kache-tmp-") {
			t.Errorf("unexpected file %s", f)
		}
	}
	return out
}
