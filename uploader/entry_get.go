package uploader

import (
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

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// GetEntry downloads entry key and materialises it at dest (a file or a
// directory, per the entry), verifying size and sha256 of the data object
// (and, for a v1 directory, of every file). It reads the v2 object first,
// then the v1 manifest and data object. It builds the entry in a temp
// sibling of dest and renames it into place, replacing what was there, so
// dest is either absent, the old copy or the whole verified entry. A
// missing entry is (0, false, nil); a failed check wraps ErrCorrupt, and
// the corrupt entry is deleted from the remote so that the next upload of
// the key replaces it instead of being skipped for ever.
func GetEntry(ctx context.Context, r Remote, key, dest string) (int64, bool, error) {
	if err := ValidKey(key); err != nil {
		return 0, false, Permanent(err)
	}
	m, body, marker, err := openEntry(ctx, r, key)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		dropCorrupt(ctx, r, marker, err)
		return 0, false, err
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
		dropCorrupt(ctx, r, marker, err)
		return 0, false, fmt.Errorf("get entry %s: %w", key, err)
	}
	return m.Size, true, nil
}

// openEntry opens the entry in the v2 layout, else in the v1 layout. marker
// is the object whose presence makes the entry present (the v2 object or
// the v1 manifest): the one to delete if the entry proves corrupt.
func openEntry(ctx context.Context, r Remote, key string) (m *Manifest, body io.ReadCloser, marker string, err error) {
	marker = v2Key(key)
	body, meta, err := r.GetMeta(ctx, marker)
	if err == nil {
		if m, err = ParseMeta(key, meta); err != nil {
			body.Close()
			return nil, nil, marker, err
		}
		return m, body, marker, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, nil, marker, err
	}
	marker = key + ManifestSuffix
	if m, err = readManifest(ctx, r, key); err != nil {
		return nil, nil, marker, err
	}
	body, err = r.Get(ctx, m.dataKey())
	if err != nil {
		return nil, nil, marker, fmt.Errorf("entry %s has a manifest but its data object failed: %w", key, err)
	}
	return m, body, marker, nil
}

// dropCorrupt deletes the marker object of an entry that failed
// verification, so that HasEntry and the uploader's conditional write see
// the key as absent and the next upload stores a good copy. Best effort:
// a failed delete is only logged by the caller's error.
func dropCorrupt(ctx context.Context, r Remote, marker string, cause error) {
	if !errors.Is(cause, ErrCorrupt) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = r.Delete(ctx, marker)
}

// readManifest fetches and checks the v1 manifest of key.
func readManifest(ctx context.Context, r Remote, key string) (*Manifest, error) {
	rc, err := r.Get(ctx, key+ManifestSuffix)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return ParseManifest(key, io.LimitReader(rc, maxManifestBytes))
}

// ParseManifest decodes and checks the v1 manifest of key.
func ParseManifest(key string, r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err) // the stored bytes are bad, not the network
		}
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	switch {
	case m.Version != ManifestVersion:
		return nil, fmt.Errorf("manifest of %s: version %d, this kache reads version %d (upgrade kache)", key, m.Version, ManifestVersion)
	case m.Key != key, m.Kind != KindFile && m.Kind != KindDir, m.Size < 0, len(m.SHA256) != sha256.Size*2:
		return nil, fmt.Errorf("%w: manifest of %s is malformed (key %q, kind %q, size %d)", ErrCorrupt, key, m.Key, m.Kind, m.Size)
	}
	for _, f := range m.Files {
		if f.Size < 0 {
			return nil, fmt.Errorf("%w: manifest of %s lists %q with size %d", ErrCorrupt, key, f.Path, f.Size)
		}
	}
	return &m, nil
}

// materialiseFile writes the file entry to a temp sibling of dest, checks
// it and renames it into place.
func materialiseFile(vr *verifier, m *Manifest, dest string) error {
	f, err := atomicfile.Create(dest, fileMode(m.Mode), atomicfile.Durable)
	if err != nil {
		return err
	}
	defer f.Abort() // a no-op once committed
	if _, err := io.Copy(f, vr); err != nil {
		return err
	}
	if err := vr.check(); err != nil {
		return err
	}
	return f.CommitReplace()
}

func fileMode(m uint32) fs.FileMode {
	if m == 0 {
		return 0o644
	}
	return storeMode(fs.FileMode(m))
}

// storeMode is the permission a store file gets from the remote's bits:
// never writable by group or others (a remote that says 0777 must not make
// the store's entries writable by other users, who could then change what
// kache serves as a hit).
func storeMode(m fs.FileMode) fs.FileMode { return m.Perm() &^ 0o022 }

// materialiseDir extracts the directory entry into a temp sibling of dest,
// checks it and renames it into place.
func materialiseDir(ctx context.Context, vr *verifier, m *Manifest, dest string) error {
	tmp, err := atomicfile.TempDir(dest)
	if err != nil {
		return err
	}
	verify := func() error {
		if _, err := io.Copy(io.Discard, vr); err != nil {
			return err
		}
		return vr.check()
	}
	err = unpackDir(ctx, vr, tmp, m, verify)
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = atomicfile.Place(tmp, dest)
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
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
