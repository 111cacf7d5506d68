package uploader

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FileRecord is one regular file of a directory entry, as the manifest lists
// it: GetEntry checks every file against it.
type FileRecord struct {
	Path   string `json:"path"` // slash-separated, relative to the entry
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode"` // Unix permission bits, e.g. 420 for 0644
}

// packDir streams dir as a zstd-compressed tar into w: directories, regular
// files and symlinks under relative paths, in lexical order. It returns the
// records of the regular files. A source that vanished or cannot be read is
// a Permanent error naming the path.
func packDir(ctx context.Context, dir string, w io.Writer) ([]FileRecord, error) {
	zw, err := zstd.NewWriter(w)
	if err != nil {
		return nil, fmt.Errorf("zstd writer: %w", err)
	}
	tw := tar.NewWriter(zw)
	var recs []FileRecord
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return sourceErr(p, err)
		}
		if err := ctx.Err(); err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rec, err := packEntry(tw, p, filepath.ToSlash(rel))
		if rec != nil {
			recs = append(recs, *rec)
		}
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("zstd: %w", cerr)
	}
	return recs, err
}

// packEntry writes one path to the tar; a regular file also yields its record.
func packEntry(tw *tar.Writer, p, rel string) (*FileRecord, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, sourceErr(p, err)
	}
	hdr := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
	switch {
	case fi.Mode().IsRegular():
		return packFile(tw, p, hdr)
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			return nil, sourceErr(p, err)
		}
		hdr.Typeflag = tar.TypeSymlink
	default:
		return nil, Permanent(fmt.Errorf("source %s: unsupported file type %s (an entry may hold only regular files, directories and symlinks)", p, fi.Mode().Type()))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("archive %s: %w", p, err)
	}
	return nil, nil
}

// packFile copies exactly the size the file had when opened, hashing it on
// the way, so a file that changes mid-way fails instead of producing an
// archive that disagrees with its manifest.
func packFile(tw *tar.Writer, p string, hdr *tar.Header) (*FileRecord, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, sourceErr(p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, sourceErr(p, err)
	}
	hdr.Typeflag, hdr.Size, hdr.ModTime = tar.TypeReg, fi.Size(), fi.ModTime()
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("archive %s: %w", p, err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tw, h), f, fi.Size()); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s shrank while being archived", ErrSourceChanged, p)
		}
		return nil, fmt.Errorf("archive %s: %w", p, sourceErr(p, err))
	}
	return &FileRecord{Path: hdr.Name, Size: fi.Size(), SHA256: hex.EncodeToString(h.Sum(nil)), Mode: uint32(fi.Mode().Perm())}, nil
}

// ErrSourceChanged: the source changed while it was read. Worth a retry
// (the build may have been rewriting it), but only a few: see maxChanged.
var ErrSourceChanged = errors.New("source changed during upload")

// sourceErr marks errors that retrying cannot fix as Permanent: a source
// that does not exist (or vanished) and one we may not read.
func sourceErr(p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Permanent(fmt.Errorf("source %s does not exist (it vanished or was never built): %w", p, err))
	case errors.Is(err, fs.ErrPermission):
		return Permanent(fmt.Errorf("source %s is not readable: %w", p, err))
	}
	return err
}

// unpackDir extracts a tar.zst stream into the empty directory dest and
// checks it against the manifest's records: every listed file present with
// its size and sha256, nothing unlisted. Paths must be relative and stay
// inside dest; os.Root also refuses to follow a symlink out of it. verify
// runs once the archive is read and before directory modes are applied, so
// a failed check leaves a tree that is easy to remove.
func unpackDir(ctx context.Context, r io.Reader, dest string, want []FileRecord, verify func() error) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	// Concurrency 1 decodes in this goroutine, so verify reads r after the
	// decoder, never alongside it.
	src := &errRecorder{r: r}
	zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("zstd reader: %w", err)
	}
	u := &unpacker{root: root, src: src, want: map[string]FileRecord{}, seen: map[string]bool{}}
	for _, rec := range want {
		u.want[rec.Path] = rec
	}
	err = u.run(ctx, tar.NewReader(zr))
	zr.Close()
	if err != nil {
		return err
	}
	if len(u.seen) != len(u.want) {
		return fmt.Errorf("%w: archive holds %d of the %d files its manifest lists", ErrCorrupt, len(u.seen), len(u.want))
	}
	if err := verify(); err != nil {
		return err
	}
	return u.finishDirs()
}

// unpacker holds the state of one extraction.
type unpacker struct {
	root *os.Root
	src  *errRecorder // the downloaded bytes, before decoding
	want map[string]FileRecord
	seen map[string]bool
	dirs []*tar.Header // modes and times are set last, children first
}

func (u *unpacker) run(ctx context.Context, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return u.decodeErr(fmt.Errorf("read archive: %w", err))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
}

func (u *unpacker) entry(hdr *tar.Header, tr io.Reader) error {
	name := strings.TrimSuffix(hdr.Name, "/")
	if !filepath.IsLocal(name) || strings.Contains(name, `\`) {
		return fmt.Errorf("%w: unsafe path (absolute or with ..)", ErrCorrupt)
	}
	if err := u.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		u.dirs = append(u.dirs, hdr)
		return u.root.MkdirAll(name, 0o755)
	case tar.TypeSymlink:
		return u.root.Symlink(hdr.Linkname, name)
	case tar.TypeReg:
		return u.file(name, hdr, tr)
	}
	return fmt.Errorf("%w: unsupported tar entry type %q", ErrCorrupt, hdr.Typeflag)
}

// file writes one regular file, checking it against its record.
func (u *unpacker) file(name string, hdr *tar.Header, tr io.Reader) error {
	rec, ok := u.want[name]
	if !ok || u.seen[name] {
		return fmt.Errorf("%w: not listed in the manifest, or listed once and found twice", ErrCorrupt)
	}
	if hdr.Size != rec.Size {
		return fmt.Errorf("%w: size %d, manifest says %d", ErrCorrupt, hdr.Size, rec.Size)
	}
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	in := &errRecorder{r: tr}
	_, err = io.Copy(io.MultiWriter(f, h), in)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if in.err != nil {
		return u.decodeErr(err)
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != rec.SHA256 {
		return fmt.Errorf("%w: sha256 %s, manifest says %s", ErrCorrupt, got, rec.SHA256)
	}
	u.seen[name] = true
	return u.setMeta(name, fs.FileMode(rec.Mode).Perm(), hdr.ModTime)
}

// decodeErr marks a failure to decode the archive as ErrCorrupt when the
// download itself went fine: the stored bytes are bad, not the network.
func (u *unpacker) decodeErr(err error) error {
	if u.src.err != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// errRecorder remembers the first read error other than EOF.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// finishDirs applies directory modes and times once their contents exist,
// deepest first, so a read-only directory does not block its own children.
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		hdr := u.dirs[i]
		if err := u.setMeta(strings.TrimSuffix(hdr.Name, "/"), fs.FileMode(hdr.Mode).Perm(), hdr.ModTime); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) setMeta(name string, mode fs.FileMode, mtime time.Time) error {
	if err := u.root.Chmod(name, mode); err != nil {
		return err
	}
	return u.root.Chtimes(name, mtime, mtime)
}
