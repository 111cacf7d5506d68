package uploader

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/eventlog"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/uploader/s3test"
)

const s3Prefix = "pool/"

// newS3 builds an S3 remote on srv with the credentials now in the
// environment, closed when the test ends (after the pool's drain).
func newS3(t *testing.T, srv *s3test.Server) *S3Remote {
	t.Helper()
	c := srv.Config()
	c.Prefix = s3Prefix
	r, err := NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func spoolEntries(t *testing.T, f *poolFixture, prefix string, n int) []Entry {
	var entries []Entry
	for i := range n {
		entries = append(entries, f.entry(t, fmt.Sprintf("%s-%03d", prefix, i), 1024+i*7))
	}
	return entries
}

func TestPoolS3FiveHundredUploadsDrained(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	f := newPoolFixture(t)
	o := f.options(t, newS3(t, srv))
	o.Workers = 16
	p, _ := startPool(t, o)
	entries := spoolEntries(t, f, "bulk", 500)
	if n, err := p.Enqueue(entries); n != 500 || err != nil {
		t.Fatalf("Enqueue = %d, %v", n, err)
	}
	rep := p.Drain(2 * time.Minute)
	if rep.Left != 0 || rep.Failed != 0 || rep.Drained < 1 || rep.Drained > 500 {
		t.Fatalf("Drain = %+v; want everything drained, none left", rep)
	}
	if s := p.Stats(); s.UploadsCompleted != 500 || s.Spool != 0 {
		t.Fatalf("stats = %+v", s)
	}
	for _, e := range entries {
		sameFile(t, e.Path, srv.ObjectPath(s3Prefix+v2Key(e.Key)))
	}
	if n := spool.Count(f.spool); n != 0 {
		t.Fatalf("%d intents left in the spool", n)
	}
}

func TestPoolS3DownThenBack(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	f := newPoolFixture(t)
	o := f.options(t, newS3(t, srv))
	o.BreakerThreshold, o.BreakerCooldown = 3, 200*time.Millisecond
	p, _ := startPool(t, o)
	srv.Stop()
	entries := spoolEntries(t, f, "down", 20)
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "breaker open", func() bool { return p.Stats().Breaker == BreakerOpen })
	if s := p.Stats(); s.UploadsCompleted != 0 || s.Queued+s.InFlight != 20 {
		t.Fatalf("stats while S3 is down = %+v", s)
	}
	srv.Restart()
	testenv.WaitFor(t, 60*time.Second, "uploads done after restart", idle(p, f.spool))
	s := p.Stats()
	if s.UploadsCompleted != 20 || s.UploadsFailed != 0 || s.FailedIntents != 0 || s.Breaker != BreakerClosed {
		t.Fatalf("stats = %+v", s)
	}
	for _, e := range entries {
		sameFile(t, e.Path, srv.ObjectPath(s3Prefix+v2Key(e.Key)))
	}
	if len(eventsOf(t, f.events, eventlog.UploadRetry, "")) == 0 {
		t.Fatal("no upload_retry events while S3 was down")
	}
}

// TestPoolS3WrongCredentialsPauseThenResume: a wrong secret pauses the
// remote: no intent moves to failed/, status says why, and once the server
// accepts the client's secret (restarted with it, as an operator fixing the
// credentials would), the probe gets through and every upload completes.
func TestPoolS3WrongCredentialsPauseThenResume(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	const clientSecret = "not-the-secret"
	t.Setenv("AWS_SECRET_ACCESS_KEY", clientSecret)
	f := newPoolFixture(t)
	o := f.options(t, newS3(t, srv))
	o.PauseRetry = 100 * time.Millisecond
	p, _ := startPool(t, o)
	entries := spoolEntries(t, f, "denied", 3)
	if _, err := p.Enqueue(entries); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "remote paused", func() bool { return p.Stats().Breaker == BreakerPaused })
	s := p.Stats()
	if !strings.Contains(s.PausedReason, "SignatureDoesNotMatch") || s.UploadsFailed != 0 || s.FailedIntents != 0 || spool.Count(f.spool) != 3 {
		t.Fatalf("stats while paused = %+v, %d intents; want the reason and every intent kept", s, spool.Count(f.spool))
	}
	srv.Stop()
	srv.Secret = clientSecret
	srv.Restart()
	testenv.WaitFor(t, 30*time.Second, "uploads done after the fix", idle(p, f.spool))
	s = p.Stats()
	if s.UploadsCompleted != 3 || s.UploadsFailed != 0 || s.FailedIntents != 0 || s.Breaker != BreakerClosed || s.PausedReason != "" {
		t.Fatalf("stats = %+v", s)
	}
	for _, e := range entries {
		sameFile(t, e.Path, srv.ObjectPath(s3Prefix+v2Key(e.Key)))
	}
}
