package uploader

import "github.com/kunobi-ninja/kache/internal/cachekey"

// The key rules live in cachekey, which clients share without linking the
// uploader; these names keep the uploader's API whole.
var (
	// ValidKey is cachekey.Valid.
	ValidKey = cachekey.Valid
	// ErrInvalidKey marks a key that ValidKey rejects.
	ErrInvalidKey = cachekey.ErrInvalid
)

// MaxKeyLen bounds a key so that it, with its suffixes, fits any remote.
const MaxKeyLen = cachekey.MaxLen
