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
	"path"
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

// packStats counts what an archive unpacks to, for the v2 metadata that
// bounds the unpacker.
type packStats struct {
	entries  int   // tar members
	unpacked int64 // bytes of regular files
}

// packDir streams dir as a zstd-compressed tar into w: directories, regular
// files and symlinks under relative paths, in lexical order. A source that
// vanished or cannot be read, or a symlink pointing out of dir, is a
// Permanent error naming the path.
func packDir(ctx context.Context, dir string, w io.Writer) (packStats, error) {
	var st packStats
	// The fastest level, on this goroutine alone: the worker's thread
	// runs below the compilers' priority (yieldToBuilds), and an encoder
	// with its own goroutines would not.
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return st, fmt.Errorf("zstd writer: %w", err)
	}
	tw := tar.NewWriter(zw)
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
		n, err := packEntry(tw, p, filepath.ToSlash(rel))
		st.entries++
		st.unpacked += n
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("zstd: %w", cerr)
	}
	return st, err
}

// packEntry writes one path to the tar and returns the bytes of a regular
// file's content.
func packEntry(tw *tar.Writer, p, rel string) (int64, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, sourceErr(p, err)
	}
	hdr := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
	switch {
	case fi.Mode().IsRegular():
		return packFile(tw, p, hdr)
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		if hdr.Linkname, err = os.Readlink(p); err != nil {
			return 0, sourceErr(p, err)
		}
		if !linkStaysInside(rel, hdr.Linkname) {
			return 0, Permanent(fmt.Errorf("source %s: symlink to %q points out of the entry (an entry may hold only symlinks that stay inside it)", p, hdr.Linkname))
		}
		hdr.Typeflag = tar.TypeSymlink
	default:
		return 0, Permanent(fmt.Errorf("source %s: unsupported file type %s (an entry may hold only regular files, directories and symlinks)", p, fi.Mode().Type()))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("archive %s: %w", p, err)
	}
	return 0, nil
}

// linkStaysInside reports whether a symlink at rel (slash-separated,
// relative to the entry) with target resolves inside the entry: a relative
// target that does not climb out. An absolute target never does.
func linkStaysInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || strings.Contains(target, `\`) {
		return false
	}
	return filepath.IsLocal(path.Join(path.Dir(rel), target))
}

// packFile copies exactly the size the file had when opened, so a file
// that shrinks mid-way fails instead of producing a short archive member.
func packFile(tw *tar.Writer, p string, hdr *tar.Header) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, sourceErr(p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, sourceErr(p, err)
	}
	hdr.Typeflag, hdr.Size, hdr.ModTime = tar.TypeReg, fi.Size(), fi.ModTime()
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("archive %s: %w", p, err)
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("%w: %s shrank while being archived", ErrSourceChanged, p)
		}
		return 0, fmt.Errorf("archive %s: %w", p, sourceErr(p, err))
	}
	return fi.Size(), nil
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

// maxDecoderWindow bounds the zstd window the decoder accepts (and so its
// memory): kache's own archives use the encoder's default 8 MiB window.
const maxDecoderWindow = 16 << 20

// unpackDir extracts a tar.zst stream into the empty directory dest. Paths
// must be relative and stay inside dest; os.Root also refuses to follow a
// symlink out of it, and a symlink whose target leaves the entry is
// refused. The members and the bytes of regular files are capped by m's
// limits (a zip bomb stops with ErrCorrupt, not a full disk). A v1 entry is
// also checked against its manifest's records: every listed file present
// with its size and sha256, nothing unlisted. verify runs once the archive
// is read and before directory modes are applied, so a failed check leaves
// a tree that is easy to remove.
func unpackDir(ctx context.Context, r io.Reader, dest string, m *Manifest, verify func() error) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	// Concurrency 1 decodes in this goroutine, so verify reads r after the
	// decoder, never alongside it.
	src := &errRecorder{r: r}
	zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDecoderWindow),
		zstd.WithDecoderMaxMemory(maxDecoderWindow*2))
	if err != nil {
		return fmt.Errorf("zstd reader: %w", err)
	}
	u := newUnpacker(root, src, m)
	err = u.run(ctx, tar.NewReader(zr))
	zr.Close()
	if err != nil {
		return err
	}
	if u.listed && len(u.seen) != len(u.want) {
		return fmt.Errorf("%w: archive holds %d of the %d files its manifest lists", ErrCorrupt, len(u.seen), len(u.want))
	}
	if err := verify(); err != nil {
		return err
	}
	return u.finishDirs()
}

// unpacker holds the state of one extraction.
type unpacker struct {
	root    *os.Root
	src     *errRecorder // the downloaded bytes, before decoding
	listed  bool         // v1: files are checked against want
	want    map[string]FileRecord
	seen    map[string]bool
	dirs    []*tar.Header // modes and times are set last, children first
	members int           // left before the member cap
	budget  int64         // regular-file bytes left before the size cap
}

func newUnpacker(root *os.Root, src *errRecorder, m *Manifest) *unpacker {
	u := &unpacker{root: root, src: src, listed: m.Version < FormatVersion, want: map[string]FileRecord{}, seen: map[string]bool{}}
	u.members, u.budget = m.limits()
	for _, rec := range m.Files {
		u.want[rec.Path] = rec
	}
	return u
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
	if u.members--; u.members < 0 {
		return fmt.Errorf("%w: more archive members than its metadata declares", ErrCorrupt)
	}
	if err := u.root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		u.dirs = append(u.dirs, hdr)
		return u.root.MkdirAll(name, 0o755)
	case tar.TypeSymlink:
		if !linkStaysInside(filepath.ToSlash(name), hdr.Linkname) {
			return fmt.Errorf("%w: symlink to %q points out of the entry", ErrCorrupt, hdr.Linkname)
		}
		return u.root.Symlink(hdr.Linkname, name)
	case tar.TypeReg:
		if hdr.Size < 0 || hdr.Size > u.budget {
			return fmt.Errorf("%w: the archive unpacks to more bytes than its metadata declares (refused as a possible zip bomb)", ErrCorrupt)
		}
		u.budget -= hdr.Size
		return u.file(name, hdr, tr)
	}
	return fmt.Errorf("%w: unsupported tar entry type %q", ErrCorrupt, hdr.Typeflag)
}

// file writes one regular file; in a v1 entry it is checked against its
// record.
func (u *unpacker) file(name string, hdr *tar.Header, tr io.Reader) error {
	rec, ok := u.want[name]
	if u.listed && (!ok || u.seen[name]) {
		return fmt.Errorf("%w: not listed in the manifest, or listed once and found twice", ErrCorrupt)
	}
	if u.listed && hdr.Size != rec.Size {
		return fmt.Errorf("%w: size %d, manifest says %d", ErrCorrupt, hdr.Size, rec.Size)
	}
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	in := &errRecorder{r: io.LimitReader(tr, hdr.Size)}
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
	if got := hex.EncodeToString(h.Sum(nil)); u.listed && got != rec.SHA256 {
		return fmt.Errorf("%w: sha256 %s, manifest says %s", ErrCorrupt, got, rec.SHA256)
	}
	u.seen[name] = true
	return u.setMeta(name, fs.FileMode(hdr.Mode).Perm(), hdr.ModTime)
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
	if err := u.root.Chmod(name, storeMode(mode)); err != nil {
		return err
	}
	return u.root.Chtimes(name, mtime, mtime)
}
