package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/states"
)

// fakeBuild writes a kache-daemon stand-in that carries build ID id in its
// raw form and exits at once if started: enough to be compared and to fail
// a hand-over, which the test then sees.
func fakeBuild(t *testing.T, path, id string) {
	t.Helper()
	body := "#!/bin/sh\nexit 3\n# \xff Go build ID: \"" + id + "\"\n \xff\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestClientBuildHandsOver: with equal epochs, a client of another build
// asks for a hand-over only when the kache-daemon at the daemon's path is
// that build; a client of a third build (another installation) changes
// nothing. The successor here is a stand-in that exits, so the daemon goes
// back to running and says why.
func TestClientBuildHandsOver(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "kache-daemon")
	fakeBuild(t, exe, "old/build")
	r := newRig(t, func(o *Options) { o.DaemonExe, o.Build = exe, "old/build" }).start()
	call := func(build string) {
		c := &rpc.Client{Socket: r.o.Paths.Socket, Epoch: testEpoch, Build: func() string { return build }}
		defer c.Close()
		if _, err := c.Call(context.Background(), &rpc.Request{Op: rpc.OpStats}); err != nil {
			t.Fatal(err)
		}
	}
	call("elsewhere/build") // another installation's build: not at our path
	call("old/build")       // our own
	r.waitState(states.Running)
	if got := r.log.path(); strings.Contains(got, "handing_over") {
		t.Fatalf("a build not at our path started a hand-over: %s", got)
	}
	fakeBuild(t, exe+".new", "new/build")
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	call("new/build")
	testenv.WaitFor(t, 10*time.Second, "the hand-over to fail back to running", func() bool {
		return strings.Contains(r.log.path(), "running(handover_failed)")
	})
	want := "starting -> running(ready) -> handing_over(client_build) -> running(handover_failed)"
	if got := r.log.path(); got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if st, _ := r.status(); st == nil || !strings.Contains(st.Handover, "exit status 3") || st.Build != "old/build" {
		t.Errorf("status handover %q build %q", st.Handover, st.Build)
	}
	call("new/build") // while the retry waits: ignored, not another spawn
	if got := r.log.path(); got != want {
		t.Errorf("a client during the retry backoff moved the machine: %s", got)
	}
}
