package cli

import "errors"

// quietError is an error whose message the command already showed the
// user; main uses it for the exit code only.
type quietError struct{ error }

func (q quietError) Unwrap() error { return q.error }

func quiet(err error) error { return quietError{err} }

// IsQuiet reports whether main should not print err.
func IsQuiet(err error) bool {
	var q quietError
	return errors.As(err, &q)
}
