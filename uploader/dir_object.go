package uploader

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// A v2 object on a directory remote is one file: a header line holding the
// metadata, then the data. The header is
//
//	kache-object {"kache-format":"2",...}\n
//
// (the magic, a space, a JSON object of strings, a newline), at most
// maxDirHeader bytes, so the metadata is written in the same atomic step as
// the data: there is no sidecar to lose or to race.
const (
	dirHeaderMagic = "kache-object "
	maxDirHeader   = 8 << 10
)

// PutNew writes the header and the body to a temp file beside the object
// (atomicfile, durable), hashing the body as it is written, and hard-links
// it to the object's name (atomicfile's CommitNew). link(2) fails if the name exists, so of two concurrent
// uploads of a key exactly one wins and the other gets ErrExists, with no
// window between a check and a write. A body that does not hash to sum is
// not linked (ErrBodyMismatch).
func (d *DirRemote) PutNew(ctx context.Context, key string, body io.Reader, size int64, sum string, meta map[string]string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("put %s: %w", p, ErrExists) // cheap early answer; the link decides
	}
	hdr, err := encodeDirHeader(meta)
	if err != nil {
		return Permanent(fmt.Errorf("put %s: %w", p, err))
	}
	tmp, err := d.createTemp(p)
	if err != nil {
		return d.classify("put", p, err)
	}
	defer tmp.Abort()
	if err := d.fillNew(ctx, tmp, hdr, body, size, sum); err != nil {
		return d.classify("put", p, err)
	}
	if err := tmp.CommitNew(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("put %s: %w", p, ErrExists)
		}
		return d.classify("put", p, fmt.Errorf("%w (the remote directory's filesystem must support hard links)", err))
	}
	return nil
}

// createTemp makes a temp file in the object's directory, creating the
// v2 namespace directory on first use. The root itself is never created
// here: a root that vanished (an unmounted share) must fail the upload, not
// silently fill the empty mount point.
func (d *DirRemote) createTemp(p string) (*atomicfile.File, error) {
	dir := filepath.Dir(p)
	f, err := atomicfile.Create(p, 0o644, atomicfile.Durable)
	if errors.Is(err, fs.ErrNotExist) && dir != d.root {
		if err = os.Mkdir(dir, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
			f, err = atomicfile.Create(p, 0o644, atomicfile.Durable)
		}
	}
	return f, err
}

// fillNew writes header and body, checks the body's size and hash, syncs
// and closes the file.
func (d *DirRemote) fillNew(ctx context.Context, f *atomicfile.File, hdr []byte, body io.Reader, size int64, sum string) error {
	_, err := f.Write(hdr)
	h := sha256.New()
	var n int64
	if err == nil {
		n, err = io.Copy(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: body})
	}
	switch {
	case err != nil:
	case n != size:
		err = fmt.Errorf("%w: read %d bytes, expected %d", ErrBodyMismatch, n, size)
	case hex.EncodeToString(h.Sum(nil)) != sum:
		err = fmt.Errorf("%w: sha256 %x, expected %s", ErrBodyMismatch, h.Sum(nil), sum)
	}
	return err
}

// classify marks a remote directory we may not write (permissions, a
// read-only mount) as Paused: a person must fix it, and no entry is at
// fault. Other errors (ENOSPC on the remote, a flaky NFS) stay transient.
func (d *DirRemote) classify(op, p string, err error) error {
	err = fmt.Errorf("%s %s: %w", op, p, err)
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return Paused(fmt.Errorf("%w (make the remote directory %s writable; uploads resume by themselves)", err, d.root))
	}
	return err
}

// GetMeta opens a v2 object, parses its header and returns a reader of the
// data that follows it.
func (d *DirRemote) GetMeta(ctx context.Context, key string) (io.ReadCloser, map[string]string, error) {
	rc, err := d.Get(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(rc, maxDirHeader)
	meta, err := ParseDirHeader(br)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("%w: object %s: %w", ErrCorrupt, key, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{br, rc}, meta, nil
}

// Delete removes the object; a missing one is not an error.
func (d *DirRemote) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.classify("delete", p, err)
	}
	return nil
}

// encodeDirHeader is the header line of meta.
func encodeDirHeader(meta map[string]string) ([]byte, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	hdr := append([]byte(dirHeaderMagic), append(b, '\n')...)
	if len(hdr) > maxDirHeader {
		return nil, fmt.Errorf("object metadata is %d bytes, the limit is %d", len(hdr), maxDirHeader)
	}
	return hdr, nil
}

// ParseDirHeader reads the header line of a v2 object on a directory
// remote from br (whose buffer holds at least maxDirHeader bytes) and
// returns its metadata, leaving br at the first byte of data. It never
// reads past maxDirHeader bytes looking for the end of the header.
func ParseDirHeader(br *bufio.Reader) (map[string]string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("no header end in the first %d bytes", len(line))
	}
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	rest, ok := bytes.CutPrefix(line, []byte(dirHeaderMagic))
	if !ok {
		return nil, errors.New("not a kache v2 object (no header)")
	}
	var meta map[string]string
	if err := json.Unmarshal(rest, &meta); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return meta, nil
}
