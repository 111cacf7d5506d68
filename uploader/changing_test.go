package uploader

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// shrinkingRemote truncates the source file before every Put reads it, as
// a build that keeps rewriting the file would: each attempt finds it
// changed under it.
type shrinkingRemote struct {
	*DirRemote
	src string
}

func (s *shrinkingRemote) PutNew(ctx context.Context, key string, r io.Reader, size int64, sum string, meta map[string]string) error {
	_ = os.Truncate(s.src, 1)
	defer os.WriteFile(s.src, []byte(strings.Repeat("x", smallFileMax+1)), 0o600)
	return s.DirRemote.PutNew(ctx, key, r, size, sum, meta)
}

// TestPoolSourceThatKeepsChangingFails: retried a few times, then moved to
// failed/ with the reason, never retried for ever, and never opening the
// breaker on the remote's account.
func TestPoolSourceThatKeepsChangingFails(t *testing.T) {
	f := newPoolFixture(t)
	e := f.entry(t, "changing", smallFileMax+1) // hashed, then sent: the remote sees the change
	rem := &shrinkingRemote{DirRemote: f.remote, src: e.Path}
	p, _ := startPool(t, f.options(t, rem))
	if _, err := p.Enqueue([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the changing source to fail", func() bool { return p.Stats().UploadsFailed == 1 })
	data, err := os.ReadFile(spool.File(filepath.Join(f.spool, "failed"), "changing"))
	if err != nil || !strings.Contains(string(data), "source changed during upload") {
		t.Fatalf("failed intent: %s, %v", data, err)
	}
	if s := p.Stats(); s.Breaker != BreakerClosed || s.Spool != 0 {
		t.Fatalf("stats = %+v; want the breaker closed and the spool empty", s)
	}
}
