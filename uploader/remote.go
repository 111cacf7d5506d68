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
// An object key may hold one '/' (the v2 namespace, see V2Dir).
type Remote interface {
	// Head reports whether the object exists.
	Head(ctx context.Context, key string) (bool, error)
	// Put stores size bytes from r under key, atomically: a reader never
	// sees a partial object. It replaces an existing object (format v1).
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object; a missing one is ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// PutNew stores size bytes from body under key with the metadata meta,
	// in one atomic write, unless an object is already there: then it
	// returns ErrExists and stores nothing. The remote checks that the
	// bytes it received hash to sum (hex SHA-256): if not, it stores
	// nothing and returns ErrBodyMismatch, so an object never disagrees
	// with the checksum recorded for it.
	PutNew(ctx context.Context, key string, body io.Reader, size int64, sum string, meta map[string]string) error
	// GetMeta opens the object and returns its metadata; a missing one is
	// ErrNotFound.
	GetMeta(ctx context.Context, key string) (io.ReadCloser, map[string]string, error)
	// Delete removes the object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// String describes the remote for status ("s3://bucket/prefix", "dir:/path").
	String() string
}

// ErrNotFound is returned by Get for a missing object.
var ErrNotFound = errors.New("object not found")

// ErrExists is returned by PutNew when the object is already there: the
// upload is skipped, it is not a failure.
var ErrExists = errors.New("object already exists")

// ErrBodyMismatch is returned by PutNew when the bytes sent do not hash to
// the checksum given: the source changed between hashing and sending.
var ErrBodyMismatch = errors.New("the bytes sent do not match their checksum (the source changed while it was sent)")

// PermanentError marks a failure that retrying cannot fix (a source file
// that vanished or is unreadable). Its intent moves to the failed directory.
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

// PausedError marks a remote that refuses every request until a person
// fixes its configuration: wrong credentials, a clock too skewed to sign, a
// missing bucket. It says nothing about the entry, so the pool pauses all
// uploads and probes again later instead of failing the entry.
type PausedError struct{ Err error }

func (e *PausedError) Error() string { return "remote paused: " + e.Err.Error() }
func (e *PausedError) Unwrap() error { return e.Err }

// Paused wraps err as a PausedError.
func Paused(err error) error { return &PausedError{Err: err} }

// IsPaused reports whether err, or anything it wraps, pauses the remote.
func IsPaused(err error) bool {
	var p *PausedError
	return errors.As(err, &p)
}

// LocalError marks a failure of this machine, not of the remote nor of the
// source: the temp archive could not be created or written (disk full,
// read-only or deleted temp directory). It never counts against the
// remote's circuit breaker; the pool retries it a few times, then fails the
// entry with the reason.
type LocalError struct{ Err error }

func (e *LocalError) Error() string { return "local: " + e.Err.Error() }
func (e *LocalError) Unwrap() error { return e.Err }

// IsLocal reports whether err, or anything it wraps, is a LocalError.
func IsLocal(err error) bool {
	var l *LocalError
	return errors.As(err, &l)
}
