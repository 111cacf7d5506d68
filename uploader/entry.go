package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kunobi-ninja/kache/internal/cachekey"
)

// The remote layout of an entry; docs/remote-format.md is the full account.
const (
	ManifestSuffix  = cachekey.ManifestSuffix // the manifest of key K is K.manifest.json
	ArchiveSuffix   = cachekey.ArchiveSuffix  // a directory entry's data object is K.tar.zst
	ManifestVersion = 1
	KindFile        = "file"
	KindDir         = "dir"

	maxManifestBytes = 64 << 20
)

// ErrCorrupt marks a downloaded entry that disagrees with its manifest.
var ErrCorrupt = errors.New("entry failed verification")

// Manifest describes one entry. It is written after the data object, so a
// manifest on the remote means the entry is complete.
type Manifest struct {
	Version   int          `json:"version"`
	Key       string       `json:"key"`
	Kind      string       `json:"kind"`           // KindFile or KindDir
	Size      int64        `json:"size"`           // bytes of the data object
	SHA256    string       `json:"sha256"`         // hex sha256 of the data object
	Mode      uint32       `json:"mode,omitempty"` // file entries: permission bits
	Files     []FileRecord `json:"files,omitempty"`
	CreatedAt string       `json:"created_at"` // RFC 3339
}

// dataKey is the remote key of the entry's data object.
func (m *Manifest) dataKey() string {
	if m.Kind == KindDir {
		return m.Key + ArchiveSuffix
	}
	return m.Key
}

// HasEntry reports whether the entry is complete on the remote.
func HasEntry(ctx context.Context, r Remote, key string) (bool, error) {
	if err := ValidKey(key); err != nil {
		return false, Permanent(err)
	}
	return r.Head(ctx, key+ManifestSuffix)
}

// PutEntry uploads the file or directory at path as entry key: the data
// object first, the manifest last. It returns the data object's size. A
// source that does not exist, vanished or cannot be read is a Permanent
// error naming the path. The source must not change while it is uploaded;
// a cache entry is finished before it is handed over.
func PutEntry(ctx context.Context, r Remote, key, path string) (int64, error) {
	if err := ValidKey(key); err != nil {
		return 0, Permanent(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, sourceErr(path, err)
	}
	var m *Manifest
	switch {
	case fi.IsDir():
		m, err = putDir(ctx, r, key, path)
	case fi.Mode().IsRegular():
		m, err = putFile(ctx, r, key, path)
	default:
		err = Permanent(fmt.Errorf("source %s is a %s, not a regular file or a directory", path, fi.Mode().Type()))
	}
	if err != nil {
		return 0, err
	}
	return m.Size, putManifest(ctx, r, m)
}

// putFile uploads a file as is. It hashes and sends the same open file,
// bounded to the size it had when opened.
func putFile(ctx context.Context, r Remote, key, path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, sourceErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, sourceErr(path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size()))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %d of %d bytes: %w", path, n, fi.Size(), sourceErr(path, err))
	case n != fi.Size():
		return nil, fmt.Errorf("%w: %s shrank from %d to %d bytes while being read", ErrSourceChanged, path, fi.Size(), n)
	}
	if err := r.Put(ctx, key, io.NewSectionReader(f, 0, fi.Size()), fi.Size()); err != nil {
		if now, serr := os.Stat(path); serr == nil && (now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime())) {
			return nil, fmt.Errorf("%w: %s was rewritten while being uploaded: %v", ErrSourceChanged, path, err)
		}
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return newManifest(key, KindFile, fi.Size(), h, uint32(fi.Mode().Perm()), nil), nil
}

// putDir archives the directory into a temp file, so the upload has a known
// length and nothing is held in memory, then uploads it.
func putDir(ctx context.Context, r Remote, key, dir string) (*Manifest, error) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	tmp, err := os.CreateTemp("", "kache-"+key+"-*"+ArchiveSuffix)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	recs, err := packDir(ctx, dir, io.MultiWriter(tmp, h))
	if err != nil {
		return nil, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := r.Put(ctx, key+ArchiveSuffix, io.NewSectionReader(tmp, 0, size), size); err != nil {
		return nil, fmt.Errorf("upload %s: %w", dir, err)
	}
	return newManifest(key, KindDir, size, h, 0, recs), nil
}

func newManifest(key, kind string, size int64, h hash.Hash, mode uint32, files []FileRecord) *Manifest {
	return &Manifest{Version: ManifestVersion, Key: key, Kind: kind, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)),
		Mode: mode, Files: files, CreatedAt: time.Now().UTC().Format(time.RFC3339)}
}

func putManifest(ctx context.Context, r Remote, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := r.Put(ctx, m.Key+ManifestSuffix, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("upload manifest of %s: %w", m.Key, err)
	}
	return nil
}

// GetEntry downloads entry key and materialises it at dest (a file or a
// directory, per the entry), verifying size and sha256 of the data object
// and of every file of a directory. It builds the entry in a temp sibling
// of dest and renames it into place, replacing what was there, so dest is
// either absent, the old copy or the whole verified entry. A missing
// manifest is (0, false, nil); a failed check wraps ErrCorrupt.
func GetEntry(ctx context.Context, r Remote, key, dest string) (int64, bool, error) {
	if err := ValidKey(key); err != nil {
		return 0, false, Permanent(err)
	}
	m, err := readManifest(ctx, r, key)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	body, err := r.Get(ctx, m.dataKey())
	if err != nil {
		return 0, false, fmt.Errorf("entry %s has a manifest but its data object failed: %w", key, err)
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, false, err
	}
	vr := newVerifier(body, m)
	if m.Kind == KindDir {
		err = materialiseDir(ctx, vr, m, dest)
	} else {
		err = materialiseFile(vr, m, dest)
	}
	if err != nil {
		return 0, false, fmt.Errorf("get entry %s: %w", key, err)
	}
	return m.Size, true, nil
}

// readManifest fetches and checks the manifest of key.
func readManifest(ctx context.Context, r Remote, key string) (*Manifest, error) {
	rc, err := r.Get(ctx, key+ManifestSuffix)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(rc, maxManifestBytes))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	switch {
	case m.Version != ManifestVersion:
		return nil, fmt.Errorf("manifest of %s: version %d, this kache reads version %d (upgrade kache)", key, m.Version, ManifestVersion)
	case m.Key != key, m.Kind != KindFile && m.Kind != KindDir, m.Size < 0, len(m.SHA256) != sha256.Size*2:
		return nil, fmt.Errorf("%w: manifest of %s is malformed (key %q, kind %q, size %d)", ErrCorrupt, key, m.Key, m.Kind, m.Size)
	}
	return &m, nil
}

// materialiseFile writes the file entry to a temp sibling of dest, checks
// it and renames it into place.
func materialiseFile(vr *verifier, m *Manifest, dest string) error {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	_, err = io.Copy(f, vr)
	if err == nil {
		err = vr.check()
	}
	if err == nil {
		err = f.Chmod(fileMode(m.Mode))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return place(f.Name(), dest)
}

func fileMode(m uint32) fs.FileMode {
	if m == 0 {
		return 0o644
	}
	return fs.FileMode(m).Perm()
}

// materialiseDir extracts the directory entry into a temp sibling of dest,
// checks it and renames it into place.
func materialiseDir(ctx context.Context, vr *verifier, m *Manifest, dest string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return err
	}
	verify := func() error {
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return err
		}
		return vr.check()
	}
	err = unpackDir(ctx, vr, tmp, m.Files, verify)
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = place(tmp, dest)
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// place renames tmp to dest. A directory (or a file where a directory goes)
// cannot be renamed over, so an existing dest is first moved aside and
// removed afterwards. If a concurrent download placed its own verified copy
// meanwhile, that copy is kept.
func place(tmp, dest string) error {
	err := os.Rename(tmp, dest)
	if err == nil {
		return nil
	}
	if _, serr := os.Lstat(dest); serr != nil {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dest, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", dest, err)
	}
	defer os.RemoveAll(old)
	if err := os.Rename(tmp, dest); err != nil {
		if _, serr := os.Lstat(dest); serr == nil {
			os.RemoveAll(tmp)
			return nil
		}
		return fmt.Errorf("replace %s: %w", dest, err)
	}
	return nil
}

// verifier counts and hashes what is read through it, reading at most one
// byte past the expected size so an oversized object is caught cheaply.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want *Manifest
}

func newVerifier(r io.Reader, m *Manifest) *verifier {
	return &verifier{r: io.LimitReader(r, m.Size+1), h: sha256.New(), want: m}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	return n, err
}

func (v *verifier) check() error {
	if v.n != v.want.Size {
		return fmt.Errorf("%w: data object %s has %d bytes, manifest says %d", ErrCorrupt, v.want.dataKey(), v.n, v.want.Size)
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.SHA256 {
		return fmt.Errorf("%w: data object %s has sha256 %s, manifest says %s", ErrCorrupt, v.want.dataKey(), got, v.want.SHA256)
	}
	return nil
}
