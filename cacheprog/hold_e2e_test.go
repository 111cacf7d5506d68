package cacheprog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// TestUploadsWaitForTheGoBuild: the entries a cold go build puts are
// handed to the daemon as they come, but no upload starts before the go
// command has exited, so the build has the CPU to itself
// (docs/lifecycle.md#uploads-wait-for-the-build); then every one of them
// reaches the bucket.
func TestUploadsWaitForTheGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("real go builds")
	}
	srv := s3test.Start(t)
	r := newRig(t)
	r.env = srv.Env()
	t.Cleanup(func() { r.kache("daemon", "stop") })
	if out, err := r.kache("daemon", "start"); err != nil {
		t.Fatalf("daemon start: %v\n%s", err, out)
	}
	dir := r.module("mod")
	seen := make(chan string, 1)
	stop := make(chan struct{})
	go func() { seen <- watchHolding(r, stop) }()
	r.gocmd(dir, true, "build", "./...")
	ended := time.Now()
	close(stop)
	if line := <-seen; line == "" {
		t.Error("kache daemon status never said the uploads wait for the build")
	} else {
		t.Logf("status during the build: %s", line)
	}
	if out, err := r.kache("flush", "--timeout", "1m"); err != nil {
		t.Fatalf("flush: %v\n%s", err, out)
	}
	ups := testenv.UploadStarts(filepath.Join(r.cacheDir, "events.jsonl"), nil)
	uploads, early := len(ups), 0
	for _, u := range ups {
		if u.Began.Before(ended) {
			early++
			if early <= 3 {
				t.Errorf("upload of %s began %v before the go command exited", u.Key, ended.Sub(u.Began))
			}
		}
	}
	if early > 0 {
		out, _ := r.kache("daemon", "log", "--no-follow", "-n", "80")
		t.Logf("daemon log:\n%s", out)
	}
	keys := r.goKeys()
	if uploads == 0 || len(keys) == 0 || uploads < len(keys) {
		t.Fatalf("%d uploads for %d entries the build stored", uploads, len(keys))
	}
	for _, k := range keys {
		if _, err := os.Stat(srv.ObjectPath(uploader.V2Dir + "/" + k)); err != nil {
			t.Errorf("entry %s not in the bucket after flush", k)
		}
	}
	t.Logf("%d uploads; %d began before the go command exited", uploads, early)
}

// watchHolding polls `kache daemon status` until it shows the uploads
// waiting for a build, and returns that line ("" if never, until stop).
func watchHolding(r *rig, stop <-chan struct{}) string {
	for {
		out, _ := r.kache("daemon", "status")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "holding:") && strings.Contains(l, "pid [") {
				return l
			}
		}
		select {
		case <-stop:
			return ""
		case <-time.After(50 * time.Millisecond):
		}
	}
}
