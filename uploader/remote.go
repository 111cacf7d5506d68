// Package uploader moves cache entries between the local machine and a
// remote: the durable spool of upload intents, the worker pool that drains
// it, and the remotes themselves (S3 and a plain directory).
package uploader

import (
	"context"
	"errors"
	"io"
)

// Remote is the narrow interface every remote implements. Keys are already
// validated (see ValidKey) and carry no remote prefix; a remote adds its own.
type Remote interface {
	// Head reports whether the object exists.
	Head(ctx context.Context, key string) (bool, error)
	// Put stores size bytes from r under key, atomically: a reader never
	// sees a partial object.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object; a missing one is ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// String describes the remote for status ("s3://bucket/prefix", "dir:/path").
	String() string
}

// ErrNotFound is returned by Get for a missing object.
var ErrNotFound = errors.New("object not found")

// PermanentError marks a failure that retrying cannot fix (access denied, a
// source file that vanished). Its intent moves to the failed directory.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err, or anything it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
