// Package cachekey says which cache keys kache accepts: safe as a file name
// and an object key, and unable to name another entry's objects. The client
// checks keys before it writes an intent, the daemon again before it uses
// one, so the rule lives here, apart from the uploader.
package cachekey

import (
	"errors"
	"fmt"
	"strings"
)

// Suffixes of an entry's remote objects, which no key may end in
// (docs/remote-format.md).
const (
	ManifestSuffix = ".manifest.json"
	ArchiveSuffix  = ".tar.zst"
)

// MaxLen bounds a key so that it, with its suffixes, fits any remote.
const MaxLen = 200

// ErrInvalid marks a key that Valid rejects.
var ErrInvalid = errors.New("invalid key")

// Valid checks that key is safe as a file name and an object key, and
// cannot collide with another entry's data object or manifest.
func Valid(key string) error {
	why := ""
	switch {
	case key == "" || len(key) > MaxLen:
		why = fmt.Sprintf("its length is %d", len(key))
	case key[0] == '.':
		why = "it starts with '.'"
	case strings.Contains(key, ".."):
		why = `it contains ".."`
	case strings.HasSuffix(key, ManifestSuffix) || strings.HasSuffix(key, ArchiveSuffix):
		why = "it ends in " + ManifestSuffix + " or " + ArchiveSuffix
	default:
		if i := strings.IndexFunc(key, func(c rune) bool { return !keyChar(c) }); i >= 0 {
			why = fmt.Sprintf("it contains %q", key[i:i+1])
		}
	}
	if why == "" {
		return nil
	}
	if len(key) > 64 {
		key = key[:64] + "..."
	}
	return fmt.Errorf("%w %q: %s; use 1 to %d characters from A-Z a-z 0-9 . _ -, not starting with '.', without \"..\", not ending in %s or %s",
		ErrInvalid, key, why, MaxLen, ManifestSuffix, ArchiveSuffix)
}

func keyChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
