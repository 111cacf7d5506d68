package statefile

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func sampleState(pid int) StateRecord {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return StateRecord{Pid: pid, Version: "1.2.3", Epoch: 1740830400123456789, Exe: "/usr/bin/kache",
		State: "running", StateSince: at, Cause: "started", StartedAt: at.Add(-time.Minute),
		Socket: "/tmp/k/daemon.sock", Log: "/tmp/k/daemon.log", RestartReason: "tier 2: wedged"}
}

// onlyFiles asserts dir holds exactly the named files: no temp file left.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("dir holds %q, want %q", got, names)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.state.json")
	want := sampleState(42)
	if err := WriteState(path, sampleState(1)); err != nil {
		t.Fatal(err)
	}
	if err := WriteState(path, want); err != nil { // replaces
		t.Fatal(err)
	}
	got, err := ReadState(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadState = %+v, %v; want %+v", got, err, want)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	onlyFiles(t, dir, "daemon.state.json")
	var raw map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pid", "version", "epoch", "exe", "state", "state_since", "cause", "started_at", "socket", "log", "restart_reason"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("state file lacks key %q: %s", k, data)
		}
	}
}

func TestExitRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.exit.json")
	want := ExitRecord{Pid: 7, Reason: "idle", Code: 0, Drained: 12, Left: 1, Failed: 2,
		At: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Message: "idle for 600s"}
	if err := WriteExit(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExit(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadExit = %+v, %v; want %+v", got, err, want)
	}
	onlyFiles(t, dir, "daemon.exit.json")
}

func TestReadStateErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.state.json")
	if _, err := ReadState(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadState of a missing file = %v; want ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte(`{"pid": 1, "ver`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadState of a torn file = %v; want an error naming it", err)
	}
	if err := WriteState(filepath.Join(dir, "missing", "s.json"), sampleState(1)); err == nil {
		t.Error("WriteState into a missing dir succeeded")
	}
}

// Readers racing a writer see a whole old or a whole new record, never a
// torn one: the rename is atomic.
func TestStateWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.state.json")
	if err := WriteState(path, sampleState(1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		for i := 2; i < 150; i++ {
			if err := WriteState(path, sampleState(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for done := false; !done; reads++ {
		select {
		case <-stop:
			done = true
		default:
		}
		r, err := ReadState(path)
		if err != nil || r.Pid < 1 || r.Version != "1.2.3" {
			t.Fatalf("read %d during writes: %+v, %v", reads, r, err)
		}
	}
	wg.Wait()
	onlyFiles(t, dir, "daemon.state.json")
}
