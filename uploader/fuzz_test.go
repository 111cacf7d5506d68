package uploader

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FuzzParseManifest: any bytes as a v1 manifest parse or fail, never
// panic, and what parses is consistent.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"key":"k","kind":"file","size":3,"sha256":"` + sha256hex([]byte("abc")) + `","created_at":"2026-11-25T17:00:00Z"}`))
	f.Add([]byte(`{"version":1,"key":"k","kind":"dir","size":0,"sha256":"` + sha256hex(nil) + `","files":[{"path":"a","size":-1}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest("k", bytes.NewReader(data))
		if err != nil {
			return
		}
		if m.Key != "k" || m.Size < 0 || m.Version != ManifestVersion || len(m.SHA256) != 64 {
			t.Fatalf("accepted an inconsistent manifest: %+v", m)
		}
		if _, unpacked := m.limits(); unpacked < 0 || unpacked > MaxUnpackedBytes {
			t.Fatalf("limits of %+v: %d bytes", m, unpacked)
		}
	})
}

// FuzzParseMeta: any bytes as a directory-remote object header, then as v2
// metadata, parse or fail, never panic nor read past the header limit.
func FuzzParseMeta(f *testing.F) {
	good := (&Manifest{Version: 2, Key: "k", Kind: KindDir, Size: 10, SHA256: sha256hex(nil), Entries: 3, Unpacked: 7}).metadata()
	hdr, _ := encodeDirHeader(good)
	f.Add(append(hdr, "data"...))
	file := (&Manifest{Version: 2, Key: "k", Kind: KindFile, Size: 1, SHA256: sha256hex([]byte("x")), Mode: 0o755}).metadata()
	hdr, _ = encodeDirHeader(file)
	f.Add(hdr)
	f.Add([]byte(`kache-object {"kache-format":"3"}` + "\n"))
	f.Add([]byte("kache-object null\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), maxDirHeader)
		meta, err := ParseDirHeader(br)
		if err != nil {
			return
		}
		if consumed := len(data) - br.Buffered(); consumed > maxDirHeader {
			t.Fatalf("read %d bytes of header, the limit is %d", consumed, maxDirHeader)
		}
		m, err := ParseMeta("k", meta)
		if err != nil {
			return
		}
		entries, unpacked := m.limits()
		if m.Size < 0 || len(m.SHA256) != 64 || m.Mode > 0o777 || entries > maxArchiveEntries || unpacked > MaxUnpackedBytes || entries < 0 || unpacked < 0 {
			t.Fatalf("accepted inconsistent metadata: %+v", m)
		}
	})
}

// fuzzLimit caps what a fuzzed archive may unpack to: small, so the size
// cap is exercised.
const fuzzLimit = 1 << 20

// FuzzUnpack: any tar stream (compressed by the harness), or any bytes as
// the compressed stream when raw, unpacks or fails with nothing written
// outside the destination, no symlink pointing out of it, and no more
// regular-file bytes than the declared cap.
func FuzzUnpack(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, false)
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58}, true) // a zstd frame header, cut short
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		stream := data
		if !raw {
			stream = zstdOf(t, data)
		}
		parent := t.TempDir()
		dest := filepath.Join(parent, "entry")
		must(t, os.Mkdir(dest, 0o755))
		m := &Manifest{Version: FormatVersion, Key: "k", Kind: KindDir, Entries: 64, Unpacked: fuzzLimit}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := unpackDir(ctx, bytes.NewReader(stream), dest, m, func() error { return nil })
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("unpacking hung")
		}
		checkContained(t, parent, dest)
	})
}

// checkContained fails if anything but dest is in parent, a symlink under
// dest points out of it, or the regular files exceed fuzzLimit; then it
// makes the tree removable whatever modes the archive set.
func checkContained(t *testing.T, parent, dest string) {
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Fatalf("unpacking wrote outside dest: %v", ents)
	}
	var total int64
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			os.Chmod(p, 0o755)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dest, p)
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			if !linkStaysInside(filepath.ToSlash(rel), target) {
				t.Fatalf("symlink %s -> %s points out of the entry", rel, target)
			}
		}
		if fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	if total > fuzzLimit {
		t.Fatalf("unpacked %d bytes, the cap is %d", total, fuzzLimit)
	}
}

func zstdOf(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	must(t, err)
	zw.Write(b)
	must(t, zw.Close())
	return buf.Bytes()
}

// fuzzSeeds are small hand-made tar streams: a good tree, and the hostile
// shapes the unpacker must refuse.
func fuzzSeeds(f testing.TB) [][]byte {
	type member struct {
		name, link string
		typ        byte
		size       int64
		body       string
	}
	build := func(ms ...member) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, m := range ms {
			hdr := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.body))}
			if m.typ != tar.TypeReg {
				hdr.Size = 0
			}
			if m.size > 0 { // a header that lies about its size: no body follows
				hdr.Size = m.size
				tw.WriteHeader(hdr)
				return buf.Bytes()
			}
			if err := tw.WriteHeader(hdr); err != nil {
				f.Fatal(err)
			}
			tw.Write([]byte(m.body))
		}
		tw.Close()
		return buf.Bytes()
	}
	return [][]byte{
		build(member{name: "d/", typ: tar.TypeDir}, member{name: "d/f", typ: tar.TypeReg, body: "hello"},
			member{name: "d/l", link: "f", typ: tar.TypeSymlink}),
		build(member{name: "../evil", typ: tar.TypeReg, body: "x"}),
		build(member{name: "l", link: "/etc", typ: tar.TypeSymlink}, member{name: "l/passwd", typ: tar.TypeReg, body: "x"}),
		build(member{name: "a/l", link: "../../out", typ: tar.TypeSymlink}),
		build(member{name: "hl", link: "/etc/passwd", typ: tar.TypeLink}),
		build(member{name: "big", typ: tar.TypeReg, size: 8 << 30}),
	}
}

// TestUnpackRefusesBombsAndEscapes: the seeds' verdicts, checked by name
// (the fuzz target only checks that nothing escapes).
func TestUnpackRefusesBombsAndEscapes(t *testing.T) {
	seeds := fuzzSeeds(t)
	for i, want := range []string{"", "unsafe path", "points out of the entry", "points out of the entry", "unsupported", "zip bomb"} {
		dest := filepath.Join(t.TempDir(), "entry")
		must(t, os.Mkdir(dest, 0o755))
		m := &Manifest{Version: FormatVersion, Key: "k", Kind: KindDir, Entries: 64, Unpacked: fuzzLimit}
		err := unpackDir(context.Background(), bytes.NewReader(zstdOf(t, seeds[i])), dest, m, func() error { return nil })
		switch {
		case want == "" && err != nil:
			t.Errorf("seed %d: %v, want it unpacked", i, err)
		case want != "" && (!errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(want))):
			t.Errorf("seed %d: %v, want ErrCorrupt saying %q", i, err, want)
		}
	}
}
