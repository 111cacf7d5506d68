package cli_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

// Marker credentials: values no file or output of kache may ever hold.
const (
	markerAccess  = "AKIAMARKERACCESS7Q3Z"
	markerSecret  = "markerSECRETkey9f2e4c1b7a0d6e8f3c5b2a91"
	markerSession = "markerSESSIONtokenZ8y7x6w5v4u3t2s1"
)

// TestNoSecretWritten: a daemon given marker AWS credentials (which the
// versitygw server accepts) uploads files and a directory, checks and
// prefetches them back, and is stopped; then every file under the cache
// dir and beside the socket (the log, state and exit records), `daemon
// status --json` and `stats --json` are searched for the markers.
func TestNoSecretWritten(t *testing.T) {
	srv := markerServer(t)
	m := s3Machine(t, srv)
	m.writeConfig("drain_timeout_secs = 2\n") // the refused phase cannot drain
	es := randomFiles(t, t.TempDir(), "secret", 20)
	es["secret-tree"] = makeTree(t, filepath.Join(t.TempDir(), "tree"), 9)
	outputs := tokenRefused(t, m, es)
	m.set("AWS_SESSION_TOKEN=")
	m.ok("daemon", "start")
	m.waitSpoolEmpty(60 * time.Second)
	inBucket(t, srv, entries{"secret-000": es["secret-000"]})
	os.RemoveAll(m.paths().StoreDir())
	m.ok("check", "secret-001")
	outputs = append(outputs, m.ok("daemon", "status", "--json"), m.ok("stats", "--json"), m.ok("daemon", "status"))
	m.ok("daemon", "stop")
	m.waitGone()
	for _, r := range outputs {
		noMarker(t, "output of kache "+strings.Join(r.args, " "), []byte(r.out+r.err))
	}
	for _, dir := range []string{m.cache, filepath.Dir(m.sock)} {
		walkNoMarker(t, dir)
	}
}

// tokenRefused runs a daemon with the session-token marker too: versitygw
// has no STS and answers 400 to any request carrying a token, so this
// phase exercises the error paths (retries, logged remote errors, status
// with a failing remote), where a leak is likeliest. It returns the
// outputs to search and leaves the daemon stopped, the entries spooled.
func tokenRefused(t *testing.T, m *machine, es entries) []result {
	m.set("AWS_SESSION_TOKEN=" + markerSession)
	m.ok("daemon", "start")
	m.ok("upload", "--from", batchFile(t, es))
	// The refusal either retries (upload_retry events) or, classified as a
	// credential problem, pauses the remote (status says why): either way
	// an error path has run with the token in the environment.
	testenv.WaitFor(t, 30*time.Second, "a remote error with the session token", func() bool {
		if _, err := os.Stat(m.paths().EventsFile()); err == nil && len(m.eventKeys(eventlog.UploadRetry)) > 0 {
			return true
		}
		return strings.Contains(m.run("daemon", "status", "--json").out, `"paused"`)
	})
	out := []result{m.ok("daemon", "status", "--json"), m.ok("stats", "--json"), m.run("check", "secret-000")}
	m.ok("daemon", "stop")
	m.waitGone()
	return out
}

// markerServer is a versitygw server whose root credentials are the
// markers: started with the fixed test keys, then restarted with these.
func markerServer(t *testing.T) *s3test.Server {
	srv := s3test.Start(t)
	srv.Stop()
	srv.AccessKey, srv.Secret = markerAccess, markerSecret
	srv.Restart()
	return srv
}

// walkNoMarker fails the test for every file under root holding a marker.
func walkNoMarker(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		noMarker(t, p, data)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	if n == 0 {
		t.Fatalf("no file under %s: the search would prove nothing", root)
	}
}

func noMarker(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, mk := range []string{markerAccess, markerSecret, markerSession} {
		if strings.Contains(string(data), mk) {
			t.Errorf("%s holds the credential marker %s", where, mk)
		}
	}
}
