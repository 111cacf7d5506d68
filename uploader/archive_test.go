package uploader_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kunobi-ninja/kache/uploader"
)

// craftedEntry is one tar record of a hand-made archive.
type craftedEntry struct {
	name, link string
	typ        byte
	body       string
}

// putCrafted stores a hand-made directory entry: the archive of entries
// and a manifest that is honest about the archive's bytes and lists files.
// Only the per-entry checks can then reject it.
func putCrafted(t *testing.T, d *uploader.DirRemote, key string, entries []craftedEntry, files []uploader.FileRecord) {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	must(t, err)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), ModTime: time.Now()}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.body[:hdr.Size]))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, zw.Close())
	sum := sha256.Sum256(buf.Bytes())
	m := uploader.Manifest{Version: 1, Key: key, Kind: uploader.KindDir, Size: int64(buf.Len()),
		SHA256: hex.EncodeToString(sum[:]), Files: files, CreatedAt: time.Now().Format(time.RFC3339)}
	mb, err := json.Marshal(m)
	must(t, err)
	ctx := testCtx(t)
	mustPut(t, ctx, d, key+uploader.ArchiveSuffix, buf.Bytes())
	mustPut(t, ctx, d, key+uploader.ManifestSuffix, mb)
}

func record(path, body string) uploader.FileRecord {
	sum := sha256.Sum256([]byte(body))
	return uploader.FileRecord{Path: path, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Mode: 0o644}
}

// TestGetEntryRejectsHostileArchives: an archive that would write outside
// dest, or that disagrees with its manifest, fails and writes nothing.
func TestGetEntryRejectsHostileArchives(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name    string
		entries []craftedEntry
		files   []uploader.FileRecord
	}{
		{"dot-dot", []craftedEntry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, []uploader.FileRecord{record("../evil", "x")}},
		{"absolute", []craftedEntry{{name: filepath.Join(outside, "evil"), typ: tar.TypeReg, body: "x"}},
			[]uploader.FileRecord{record(filepath.Join(outside, "evil"), "x")}},
		{"through-symlink", []craftedEntry{{name: "link", link: outside, typ: tar.TypeSymlink},
			{name: "link/evil", typ: tar.TypeReg, body: "x"}}, []uploader.FileRecord{record("link/evil", "x")}},
		{"hardlink", []craftedEntry{{name: "hl", link: "/etc/passwd", typ: tar.TypeLink}}, nil},
		{"unlisted-file", []craftedEntry{{name: "extra", typ: tar.TypeReg, body: "x"}}, nil},
		{"missing-file", nil, []uploader.FileRecord{record("gone", "x")}},
		{"wrong-sha", []craftedEntry{{name: "f", typ: tar.TypeReg, body: "x"}}, []uploader.FileRecord{record("f", "y")}},
		{"duplicate", []craftedEntry{{name: "f", typ: tar.TypeReg, body: "x"}, {name: "f", typ: tar.TypeReg, body: "x"}},
			[]uploader.FileRecord{record("f", "x")}},
	}
	d, err := uploader.NewDir(t.TempDir())
	must(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			putCrafted(t, d, tc.name, tc.entries, tc.files)
			store := t.TempDir()
			_, _, err := uploader.GetEntry(testCtx(t), d, tc.name, filepath.Join(store, tc.name))
			if err == nil {
				t.Fatal("GetEntry accepted a hostile archive")
			}
			if left, _ := os.ReadDir(store); len(left) != 0 {
				t.Fatalf("left %v in the store", left)
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Fatalf("wrote %v outside dest", left)
			}
			if tc.name != "through-symlink" && !errors.Is(err, uploader.ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestGetEntryEmptyDir: a directory with no regular file round-trips.
func TestGetEntryEmptyDir(t *testing.T) {
	d, err := uploader.NewDir(t.TempDir())
	must(t, err)
	src := t.TempDir()
	must(t, os.Mkdir(filepath.Join(src, "sub"), 0o755))
	ctx := testCtx(t)
	_, _, err = uploader.PutEntry(ctx, d, "empty", src, t.TempDir())
	must(t, err)
	dest := filepath.Join(t.TempDir(), "empty")
	_, found, err := uploader.GetEntry(ctx, d, "empty", dest)
	if err != nil || !found {
		t.Fatalf("GetEntry = %v, %v", found, err)
	}
	assertSameTree(t, src, dest)
}
