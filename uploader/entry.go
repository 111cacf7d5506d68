package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// The v1 layout of an entry, still read; docs/remote-format.md is the full
// account of both layouts.
const (
	ManifestSuffix  = cachekey.ManifestSuffix // the manifest of key K is K.manifest.json
	ArchiveSuffix   = cachekey.ArchiveSuffix  // a directory entry's data object is K.tar.zst
	ManifestVersion = 1
	KindFile        = "file"
	KindDir         = "dir"

	maxManifestBytes = 64 << 20
	// smallFileMax: a file up to this size is read once into memory, and
	// that buffer is hashed and sent; a larger one is hashed, then sent,
	// and the remote checks the bytes it got against the hash.
	smallFileMax = 4 << 20
)

// ErrCorrupt marks a downloaded entry that disagrees with its metadata.
var ErrCorrupt = errors.New("entry failed verification")

// Manifest describes one entry: the v1 manifest object, or the metadata of
// a v2 object (Version 2, no Files).
type Manifest struct {
	Version   int          `json:"version"`
	Key       string       `json:"key"`
	Kind      string       `json:"kind"`           // KindFile or KindDir
	Size      int64        `json:"size"`           // bytes of the data object
	SHA256    string       `json:"sha256"`         // hex sha256 of the data object
	Mode      uint32       `json:"mode,omitempty"` // file entries: permission bits
	Files     []FileRecord `json:"files,omitempty"`
	CreatedAt string       `json:"created_at"` // RFC 3339
	// Entries and Unpacked (v2 dir entries) bound the unpacked archive:
	// its tar members and the bytes of its regular files.
	Entries  int   `json:"-"`
	Unpacked int64 `json:"-"`
}

// dataKey is the remote key of the entry's data object.
func (m *Manifest) dataKey() string {
	switch {
	case m.Version >= FormatVersion:
		return v2Key(m.Key)
	case m.Kind == KindDir:
		return m.Key + ArchiveSuffix
	}
	return m.Key
}

// HasEntry reports whether the entry is on the remote, in either layout:
// its v2 object, else its v1 manifest.
func HasEntry(ctx context.Context, r Remote, key string) (bool, error) {
	if err := ValidKey(key); err != nil {
		return false, Permanent(err)
	}
	if ok, err := r.Head(ctx, v2Key(key)); ok || err != nil {
		return ok, err
	}
	return r.Head(ctx, key+ManifestSuffix)
}

// PutEntry uploads the file or directory at path as entry key in format
// v2: one conditional write of one object carrying its metadata. existed
// reports an entry already there (nothing sent; the upload counts as
// skipped). Directory archives are built in tempDir ("" means
// os.TempDir()). A source that does not exist, vanished or cannot be read
// is a Permanent error naming the path; a temp archive that cannot be
// written is a LocalError.
func PutEntry(ctx context.Context, r Remote, key, path, tempDir string) (n int64, existed bool, err error) {
	if err := ValidKey(key); err != nil {
		return 0, false, Permanent(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false, sourceErr(path, err)
	}
	switch {
	case fi.IsDir():
		n, err = putDir(ctx, r, key, path, tempDir)
	case fi.Mode().IsRegular():
		n, err = putFile(ctx, r, key, path)
	default:
		err = Permanent(fmt.Errorf("source %s is a %s, not a regular file or a directory", path, fi.Mode().Type()))
	}
	if errors.Is(err, ErrExists) {
		return 0, true, nil
	}
	return n, false, err
}

// putFile uploads a file as is, bounded to the size it had when opened. The
// checksum sent with it is the hash of exactly the bytes sent: a small file
// is read once into memory and that buffer is hashed and sent; a large one
// is hashed, then sent with the hash, and the remote refuses bytes that do
// not match it (the file changed meanwhile: ErrSourceChanged, retried).
func putFile(ctx context.Context, r Remote, key, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, sourceErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, sourceErr(path, err)
	}
	body, sum, err := fileBody(f, fi, path)
	if err != nil {
		return 0, err
	}
	m := newManifest(key, KindFile, fi.Size(), sum)
	m.Mode = uint32(fi.Mode().Perm())
	if err := r.PutNew(ctx, v2Key(key), counted(ctx, body), fi.Size(), sum, m.metadata()); err != nil {
		if errors.Is(err, ErrBodyMismatch) {
			return 0, fmt.Errorf("%w: %s was rewritten while being uploaded: %w", ErrSourceChanged, path, err)
		}
		return 0, fmt.Errorf("upload %s: %w", path, err)
	}
	return fi.Size(), nil
}

// fileBody returns what to send and its hex SHA-256.
func fileBody(f *os.File, fi os.FileInfo, path string) (io.ReadSeeker, string, error) {
	size := fi.Size()
	h := sha256.New()
	if size <= smallFileMax {
		buf := make([]byte, size)
		if n, err := io.ReadFull(io.NewSectionReader(f, 0, size), buf); err != nil {
			return nil, "", readErr(path, int64(n), size, err)
		}
		if now, err := f.Stat(); err != nil || now.Size() != size || !now.ModTime().Equal(fi.ModTime()) {
			return nil, "", fmt.Errorf("%w: %s was rewritten while being read", ErrSourceChanged, path)
		}
		h.Write(buf)
		return bytes.NewReader(buf), hex.EncodeToString(h.Sum(nil)), nil
	}
	c := crc32.New(castagnoli)
	if n, err := io.Copy(io.MultiWriter(h, c), io.NewSectionReader(f, 0, size)); err != nil || n != size {
		return nil, "", readErr(path, n, size, err)
	}
	return &sourceGuard{r: io.NewSectionReader(f, 0, size), size: size, want: c.Sum32(), h: crc32.New(castagnoli), path: path},
		hex.EncodeToString(h.Sum(nil)), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sourceGuard sends a large source file and makes sure the bytes sent are
// the bytes hashed, whatever the remote checks: it keeps a CRC-32C of
// what it hands out (ten times cheaper than a second SHA-256 pass, which
// cost the largest uploads a tenth of their time) and, should it differ
// from the first pass's at the end, fails the read that would hand out
// the last bytes. The remote then never receives a whole body, so nothing
// is stored, and the upload is retried as a changed source. A seek back
// to the start (the SDK rewinds a body before sending it) restarts the
// check; a seek elsewhere ends it (lost), leaving the remote's own check.
type sourceGuard struct {
	r    io.ReadSeeker
	size int64
	want uint32
	h    hash.Hash32
	n    int64
	lost bool
	path string
}

func (g *sourceGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.h.Write(p[:n])
	g.n += int64(n)
	if n > 0 && g.n >= g.size && !g.lost && g.h.Sum32() != g.want {
		return 0, fmt.Errorf("%w: %s was rewritten while being uploaded", ErrSourceChanged, g.path)
	}
	return n, err
}

func (g *sourceGuard) Seek(off int64, whence int) (int64, error) {
	pos, err := g.r.Seek(off, whence)
	switch {
	case err != nil, pos == g.n:
	case pos == 0:
		g.h.Reset()
		g.n, g.lost = 0, false
	default:
		g.lost = true
	}
	return pos, err
}

// readErr explains a read of a source that failed or came up short.
func readErr(path string, n, size int64, err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s shrank from %d to %d bytes while being read", ErrSourceChanged, path, size, n)
	}
	return fmt.Errorf("read %s: %d of %d bytes: %w", path, n, size, sourceErr(path, err))
}

// putDir archives the directory into a temp file in tempDir, hashing the
// archive as it is written (the temp file is ours: nothing rewrites it
// before it is sent), then uploads it. Nothing is held in memory.
func putDir(ctx context.Context, r Remote, key, dir, tempDir string) (int64, error) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	tmp, err := createArchiveTemp(tempDir, key)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	lw := &localWriter{w: tmp}
	st, err := packDir(ctx, dir, io.MultiWriter(lw, h))
	if lw.err != nil {
		return 0, &LocalError{Err: fmt.Errorf("write temp archive %s for %s: %w (free space there or set the temp dir)", tmp.Name(), dir, lw.err)}
	}
	if err != nil {
		return 0, err
	}
	size := lw.n
	m := newManifest(key, KindDir, size, hex.EncodeToString(h.Sum(nil)))
	m.Entries, m.Unpacked = st.entries, st.unpacked
	if err := r.PutNew(ctx, v2Key(key), counted(ctx, io.NewSectionReader(tmp, 0, size)), size, m.SHA256, m.metadata()); err != nil {
		return 0, fmt.Errorf("upload %s: %w", dir, err)
	}
	return size, nil
}

func newManifest(key, kind string, size int64, sum string) *Manifest {
	return &Manifest{Version: FormatVersion, Key: key, Kind: kind, Size: size, SHA256: sum, CreatedAt: nowRFC3339()}
}
