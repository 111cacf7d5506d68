package uploader

import "github.com/kunobi-ninja/kache/internal/spool"

// Entry is one cache entry to upload: its key and the file or directory
// holding it (spool.Entry, which clients write without the uploader).
type Entry = spool.Entry

// ErrInvalidEntry marks an upload entry with a bad key or path.
var ErrInvalidEntry = spool.ErrInvalidEntry
