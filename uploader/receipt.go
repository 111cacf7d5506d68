package uploader

import (
	"context"
	"fmt"
)

// Receipt is the remote's own account of an entry: what `kache flush`
// prints as proof that an upload was confirmed.
type Receipt struct {
	Key    string // the cache key
	Remote string // the remote, as String describes it
	Object string // the object holding the data, within the remote
	Size   int64  // bytes of the data object
	SHA256 string // hex SHA-256 of the data object, as recorded with it
	Format int    // the remote format (docs/remote-format.md)
}

// ReadReceipt reads the entry's metadata back from the remote (either
// layout). It opens the object and closes it unread: a receipt costs one
// request's round trip, not a download.
func ReadReceipt(ctx context.Context, r Remote, key string) (Receipt, error) {
	if err := ValidKey(key); err != nil {
		return Receipt{}, err
	}
	m, body, _, err := openEntry(ctx, r, key)
	if err != nil {
		return Receipt{}, fmt.Errorf("read %s back from %s: %w", key, r, err)
	}
	body.Close()
	return Receipt{Key: key, Remote: r.String(), Object: m.dataKey(), Size: m.Size, SHA256: m.SHA256, Format: m.Version}, nil
}
