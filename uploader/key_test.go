package uploader_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kunobi-ninja/kache/uploader"
)

func TestEntryBadKey(t *testing.T) {
	er := entryRemotes(t)[0]
	ctx := testCtx(t)
	if _, _, err := uploader.PutEntry(ctx, er.r, "../up", t.TempDir(), ""); !uploader.IsPermanent(err) || !errors.Is(err, uploader.ErrInvalidKey) {
		t.Errorf("PutEntry with a bad key = %v", err)
	}
	if _, _, err := uploader.GetEntry(ctx, er.r, "a/b", t.TempDir()); !errors.Is(err, uploader.ErrInvalidKey) {
		t.Errorf("GetEntry with a bad key = %v", err)
	}
	if _, err := uploader.HasEntry(ctx, er.r, ""); !errors.Is(err, uploader.ErrInvalidKey) {
		t.Errorf("HasEntry with an empty key = %v", err)
	}
}

func TestValidKey(t *testing.T) {
	good := []string{"a", "abc-123_DEF.rlib", "x.tar", "manifest.json", strings.Repeat("k", 200), "a.b.c"}
	bad := []string{"", ".hidden", "a..b", "..", "a/b", `a\b`, "sp ace", "é", "k\x00", "x.manifest.json",
		"x.tar.zst", strings.Repeat("k", 201), "new\nline"}
	for _, k := range good {
		if err := uploader.ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range bad {
		err := uploader.ValidKey(k)
		if !errors.Is(err, uploader.ErrInvalidKey) || !strings.Contains(err.Error(), "A-Z a-z 0-9 . _ -") {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey saying what is allowed", k, err)
		}
	}
}
