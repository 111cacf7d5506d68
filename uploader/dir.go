package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DirRemote is a remote that is a plain directory, such as a shared NFS
// mount: each object is one file named by its key. Configured with
// [remote] dir or KACHE_REMOTE_DIR, it lets the daemon work with no cloud at
// hand (the README's demo uses it).
type DirRemote struct {
	root string
}

// NewDir opens the directory remote at root, creating it (0755) if missing.
func NewDir(root string) (*DirRemote, error) {
	if root == "" {
		return nil, errors.New("directory remote: empty path (set [remote] dir or KACHE_REMOTE_DIR)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("directory remote %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		err = os.MkdirAll(abs, 0o755)
		fi = nil
	}
	if err != nil {
		return nil, fmt.Errorf("directory remote %s: %w (it must be a directory kache can create and write)", abs, err)
	}
	if fi != nil && !fi.IsDir() {
		return nil, fmt.Errorf("directory remote %s: not a directory; point [remote] dir at a directory", abs)
	}
	return &DirRemote{root: abs}, nil
}

// Root is the directory holding the objects.
func (d *DirRemote) Root() string { return d.root }

// String describes the remote for status.
func (d *DirRemote) String() string { return "dir:" + d.root }

// path maps a key to its file, refusing keys that would leave the root. A
// key is one name, or V2Dir + "/" + a name.
func (d *DirRemote) path(key string) (string, error) {
	parts := strings.Split(key, "/")
	bad := len(parts) > 2 || len(parts) == 2 && parts[0] != V2Dir
	for _, part := range parts {
		bad = bad || part == "" || part == "." || part == ".." || strings.ContainsAny(part, `\`) || strings.ContainsRune(part, 0)
	}
	if bad {
		return "", Permanent(fmt.Errorf("directory remote: invalid object key %q", key))
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Head reports whether the object exists.
func (d *DirRemote) Head(ctx context.Context, key string) (bool, error) {
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("head %s: %w", p, err)
	}
}

// Get opens the object; a missing one is ErrNotFound. Reads stop once ctx
// is cancelled.
func (d *DirRemote) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", p, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", p, err)
	}
	return ctxReadCloser{ctxReader{ctx: ctx, r: f}, f}, nil
}

type ctxReadCloser struct {
	ctxReader
	io.Closer
}

// Put writes the object through atomicfile (temp file in the same
// directory, fsync, rename over the key, fsync of the directory): readers
// see the old object or the whole new one, and a confirmed Put survives a
// crash. A size of -1 means unknown; any other size must match the bytes
// read.
func (d *DirRemote) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	tmp, err := d.createTemp(p)
	if err != nil {
		return fmt.Errorf("put %s: %w", p, err)
	}
	defer tmp.Abort()
	n, err := io.Copy(tmp, ctxReader{ctx: ctx, r: r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("read %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = tmp.Commit()
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", p, err)
	}
	return nil
}

// ctxReader stops a long copy once its context is cancelled, so a drain
// deadline interrupts a large Put to a slow mount.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
