package uploader_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/uploader"
)

// entryRemote is a remote under test plus where its objects live on disk,
// so tests can read or corrupt the stored bytes.
type entryRemote struct {
	name       string
	r          uploader.Remote
	objectPath func(key string) string
}

// entryRemotes returns a directory remote and an S3 remote on versitygw.
func entryRemotes(t *testing.T) []entryRemote {
	t.Helper()
	d, err := uploader.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, s := startS3Remote(t, "")
	return []entryRemote{
		{"dir", d, func(k string) string { return filepath.Join(d.Root(), k) }},
		{"s3", s, srv.ObjectPath},
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// makeEntryTree builds a directory entry: nested dirs, a symlink, an empty
// file, an executable and a 5 MiB random file.
func makeEntryTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "entry")
	big := make([]byte, 5<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"a.rlib":               []byte("rlib bytes"),
		"deps/empty":           nil,
		"deps/nested/deep.txt": []byte("deep"),
		"deps/nested/big.bin":  big,
		"bin/tool":             []byte("#!/bin/sh\necho hi\n"),
	}
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(root, "bin/tool"), 0o755))
	must(t, os.Mkdir(filepath.Join(root, "empty-dir"), 0o750))
	must(t, os.Symlink("nested/deep.txt", filepath.Join(root, "deps/link")))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// describeTree maps each path under root to its type, mode and content
// hash or link target, to compare two trees.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			desc += " -> " + target
			if err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:]) + " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		out[rel] = desc
		return nil
	})
	must(t, err)
	return out
}

func assertSameTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := describeTree(t, want), describeTree(t, got)
	for p, d := range w {
		if g[p] != d {
			t.Errorf("%s: got %q, want %q", p, g[p], d)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: extra path in the restored tree", p)
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tree := makeEntryTree(t)
	file := filepath.Join(tree, "bin/tool")
	for _, er := range entryRemotes(t) {
		t.Run(er.name, func(t *testing.T) {
			ctx := testCtx(t)
			store := filepath.Join(t.TempDir(), "store")
			roundTrip(t, ctx, er, "dir-entry", tree, filepath.Join(store, "dir-entry"))
			roundTrip(t, ctx, er, "file-entry", file, filepath.Join(store, "file-entry"))
			leftovers, _ := filepath.Glob(filepath.Join(store, ".*"))
			if len(leftovers) > 0 {
				t.Errorf("temp files left in the store: %v", leftovers)
			}
		})
	}
}

// roundTrip uploads src as key, downloads it to dest and compares.
func roundTrip(t *testing.T, ctx context.Context, er entryRemote, key, src, dest string) {
	t.Helper()
	if ok, err := uploader.HasEntry(ctx, er.r, key); ok || err != nil {
		t.Fatalf("HasEntry before upload = %v, %v", ok, err)
	}
	n, existed, err := uploader.PutEntry(ctx, er.r, key, src, t.TempDir())
	if err != nil || existed {
		t.Fatalf("PutEntry %s = %v, %v", src, existed, err)
	}
	if ok, err := uploader.HasEntry(ctx, er.r, key); !ok || err != nil {
		t.Fatalf("HasEntry after upload = %v, %v", ok, err)
	}
	m := readManifest(t, er, key)
	if m.Size != n {
		t.Errorf("PutEntry returned %d bytes, manifest says %d", n, m.Size)
	}
	got, found, err := uploader.GetEntry(ctx, er.r, key, dest)
	if err != nil || !found || got != n {
		t.Fatalf("GetEntry = %d, %v, %v; want %d, true, nil", got, found, err, n)
	}
	fi, err := os.Stat(src)
	must(t, err)
	if fi.IsDir() {
		assertSameTree(t, src, dest)
		return
	}
	assertSameFile(t, src, dest)
}

func assertSameFile(t *testing.T, want, got string) {
	t.Helper()
	w, err := os.ReadFile(want)
	must(t, err)
	g, err := os.ReadFile(got)
	must(t, err)
	wi, _ := os.Stat(want)
	gi, _ := os.Stat(got)
	if string(w) != string(g) || wi.Mode() != gi.Mode() {
		t.Fatalf("restored file differs: %d bytes %v, want %d bytes %v", len(g), gi.Mode(), len(w), wi.Mode())
	}
}

// readManifest reads the stored v2 object of key and checks its metadata
// against the data that follows it.
func readManifest(t *testing.T, er entryRemote, key string) uploader.Manifest {
	t.Helper()
	rc, meta, err := er.r.GetMeta(testCtx(t), uploader.V2Dir+"/"+key)
	must(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	must(t, err)
	m, err := uploader.ParseMeta(key, meta)
	must(t, err)
	sum := sha256.Sum256(data)
	if m.Version != 2 || m.Key != key || m.Size != int64(len(data)) || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("metadata %+v does not describe its %d-byte object", m, len(data))
	}
	if _, err := time.Parse(time.RFC3339, m.CreatedAt); err != nil {
		t.Errorf("created_at %q is not RFC 3339: %v", m.CreatedAt, err)
	}
	if m.Kind == uploader.KindDir && (m.Entries == 0 || m.Unpacked == 0) {
		t.Errorf("directory metadata declares %d members and %d bytes", m.Entries, m.Unpacked)
	}
	return *m
}

func TestGetEntryCorrupt(t *testing.T) {
	tree := makeEntryTree(t)
	for _, er := range entryRemotes(t) {
		t.Run(er.name, func(t *testing.T) {
			ctx := testCtx(t)
			for _, tc := range []struct{ key, src, data string }{
				{"corrupt-dir", tree, uploader.V2Dir + "/corrupt-dir"},
				{"corrupt-file", filepath.Join(tree, "deps/nested/big.bin"), uploader.V2Dir + "/corrupt-file"},
			} {
				if _, _, err := uploader.PutEntry(ctx, er.r, tc.key, tc.src, t.TempDir()); err != nil {
					t.Fatal(err)
				}
				flipByte(t, er.objectPath(tc.data))
				store := t.TempDir()
				dest := filepath.Join(store, tc.key)
				_, _, err := uploader.GetEntry(ctx, er.r, tc.key, dest)
				if err == nil {
					t.Fatalf("%s: GetEntry of a corrupted object succeeded", tc.key)
				}
				// The SDK's CRC32 check of responses is off: our own
				// checks catch it on both remotes.
				if !errors.Is(err, uploader.ErrCorrupt) {
					t.Errorf("%s: err = %v, want ErrCorrupt", tc.key, err)
				}
				if left, _ := os.ReadDir(store); len(left) != 0 {
					t.Fatalf("%s: a failed GetEntry left %v in the store", tc.key, left)
				}
			}
		})
	}
}

// flipByte corrupts the last byte of a stored object (data, past any
// header), keeping its size, so only a content check can notice.
func flipByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	fi, err := f.Stat()
	must(t, err)
	b := make([]byte, 1)
	_, err = f.ReadAt(b, fi.Size()-1)
	must(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, fi.Size()-1)
	must(t, err)
}

// TestGetEntryFileCorruptIsErrCorrupt: on the directory remote the bytes are
// served as stored, so it is our own sha256 check that catches the change.
func TestGetEntryFileCorruptIsErrCorrupt(t *testing.T) {
	er := entryRemotes(t)[0]
	ctx := testCtx(t)
	src := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(src, []byte("some build output"), 0o644))
	_, _, err := uploader.PutEntry(ctx, er.r, "f", src, "")
	must(t, err)
	flipByte(t, er.objectPath(uploader.V2Dir+"/f"))
	_, _, err = uploader.GetEntry(ctx, er.r, "f", filepath.Join(t.TempDir(), "f"))
	if !errors.Is(err, uploader.ErrCorrupt) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("GetEntry = %v, want ErrCorrupt naming sha256", err)
	}
}

func TestGetEntryMissingAndIncomplete(t *testing.T) {
	for _, er := range entryRemotes(t) {
		t.Run(er.name, func(t *testing.T) {
			ctx := testCtx(t)
			dest := filepath.Join(t.TempDir(), "x")
			n, found, err := uploader.GetEntry(ctx, er.r, "absent", dest)
			if n != 0 || found || err != nil {
				t.Fatalf("GetEntry of an absent key = %d, %v, %v; want 0, false, nil", n, found, err)
			}
			// A data object without its manifest is an upload cut short.
			mustPut(t, ctx, er.r, "half", []byte("data only"))
			if ok, err := uploader.HasEntry(ctx, er.r, "half"); ok || err != nil {
				t.Fatalf("HasEntry of a data object without manifest = %v, %v", ok, err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("dest exists after a miss: %v", err)
			}
		})
	}
}

// TestGetEntryReplacesDest: a second download replaces what is at dest,
// whether a stale directory or a file.
func TestGetEntryReplacesDest(t *testing.T) {
	er := entryRemotes(t)[0]
	ctx := testCtx(t)
	tree := makeEntryTree(t)
	_, _, err := uploader.PutEntry(ctx, er.r, "replace", tree, t.TempDir())
	must(t, err)
	dest := filepath.Join(t.TempDir(), "replace")
	must(t, os.MkdirAll(filepath.Join(dest, "stale"), 0o755))
	_, _, err = uploader.GetEntry(ctx, er.r, "replace", dest)
	must(t, err)
	assertSameTree(t, tree, dest)
	must(t, os.RemoveAll(dest))
	must(t, os.WriteFile(dest, []byte("a file where the dir goes"), 0o644))
	_, _, err = uploader.GetEntry(ctx, er.r, "replace", dest)
	must(t, err)
	assertSameTree(t, tree, dest)
}

func TestPutEntryMissingSource(t *testing.T) {
	er := entryRemotes(t)[0]
	missing := filepath.Join(t.TempDir(), "never-built")
	_, _, err := uploader.PutEntry(testCtx(t), er.r, "k", missing, "")
	if !uploader.IsPermanent(err) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("PutEntry of a missing path = %v, want a permanent error naming it", err)
	}
}

// TestPutEntryUnreadable: a file we may not read fails permanently. As
// root, chmod 000 does not stop reads, so the test uses a write-only sysfs
// attribute, which the kernel refuses to open for reading even for root.
func TestPutEntryUnreadable(t *testing.T) {
	er := entryRemotes(t)[0]
	ctx := testCtx(t)
	src := filepath.Join(t.TempDir(), "secret")
	must(t, os.WriteFile(src, []byte("x"), 0o000))
	if f, err := os.Open(src); err == nil {
		f.Close()
		src = "/sys/bus/pci/rescan"
		if f, err := os.Open(src); !errors.Is(err, fs.ErrPermission) {
			if err == nil {
				f.Close()
			}
			t.Skip("running as root and no write-only sysfs file to stand in for an unreadable one")
		}
	}
	_, _, err := uploader.PutEntry(ctx, er.r, "k", src, "")
	if !uploader.IsPermanent(err) || !strings.Contains(err.Error(), src) {
		t.Fatalf("PutEntry of unreadable %s = %v, want a permanent error naming it", src, err)
	}
	if ok, _ := uploader.HasEntry(ctx, er.r, "k"); ok {
		t.Fatal("a failed PutEntry left a manifest")
	}
}

// TestPutEntryUnreadableInDir: an unreadable file inside a directory entry.
// Root reads chmod 000 files, so this subcase cannot be staged as root.
func TestPutEntryUnreadableInDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read a chmod 000 file; TestPutEntryUnreadable covers the error path as root")
	}
	er := entryRemotes(t)[0]
	tree := makeEntryTree(t)
	secret := filepath.Join(tree, "deps/secret")
	must(t, os.WriteFile(secret, []byte("x"), 0o000))
	_, _, err := uploader.PutEntry(testCtx(t), er.r, "k", tree, "")
	if !uploader.IsPermanent(err) || !strings.Contains(err.Error(), secret) {
		t.Fatalf("PutEntry with unreadable %s = %v, want a permanent error naming it", secret, err)
	}
}

func TestPutEntryFifoInDir(t *testing.T) {
	er := entryRemotes(t)[0]
	tree := makeEntryTree(t)
	fifo := filepath.Join(tree, "deps/pipe")
	must(t, syscall.Mkfifo(fifo, 0o644))
	_, _, err := uploader.PutEntry(testCtx(t), er.r, "k", tree, "")
	if !uploader.IsPermanent(err) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("PutEntry with a fifo = %v, want a permanent 'unsupported' error naming it", err)
	}
}
