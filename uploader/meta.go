package uploader

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format v2 keeps an entry in one object, V2Dir + "/" + key, whose user
// metadata (x-amz-meta-* on S3, the header line on a directory remote)
// replaces the v1 manifest. No key starts with '.', so the namespace can
// never collide with a v1 object (K, K.tar.zst, K.manifest.json).
const (
	V2Dir         = ".v2"
	FormatVersion = 2 // the format PutEntry writes

	metaFormat   = "kache-format"
	metaKind     = "kache-kind"
	metaSize     = "kache-size"
	metaSHA256   = "kache-sha256"
	metaMode     = "kache-mode"     // file entries: octal permission bits
	metaEntries  = "kache-entries"  // dir entries: tar members
	metaUnpacked = "kache-unpacked" // dir entries: bytes of regular files
	metaCreated  = "kache-created"
)

// Limits on what a directory entry may unpack to, whatever its metadata
// says: a hostile or broken archive cannot fill the disk or the memory.
const (
	MaxUnpackedBytes  = 64 << 30
	maxArchiveEntries = 1 << 20
)

// v2Key is the object holding entry key in format v2.
func v2Key(key string) string { return V2Dir + "/" + key }

// metadata is the v2 object metadata describing m.
func (m *Manifest) metadata() map[string]string {
	meta := map[string]string{
		metaFormat: strconv.Itoa(FormatVersion), metaKind: m.Kind,
		metaSize: strconv.FormatInt(m.Size, 10), metaSHA256: m.SHA256, metaCreated: m.CreatedAt,
	}
	if m.Kind == KindFile {
		meta[metaMode] = strconv.FormatUint(uint64(m.Mode), 8)
	} else {
		meta[metaEntries] = strconv.Itoa(m.Entries)
		meta[metaUnpacked] = strconv.FormatInt(m.Unpacked, 10)
	}
	return meta
}

// ParseMeta reads the v2 metadata of entry key. Keys are matched without
// regard to case (S3 servers differ). Malformed metadata wraps ErrCorrupt;
// a newer format asks for an upgrade.
func ParseMeta(key string, meta map[string]string) (*Manifest, error) {
	get := func(name string) string {
		for k, v := range meta {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: metadata of %s: %s", ErrCorrupt, v2Key(key), what)
	}
	v, err := strconv.Atoi(get(metaFormat))
	switch {
	case err != nil || v < FormatVersion:
		return nil, bad(fmt.Sprintf("format %q", get(metaFormat)))
	case v > FormatVersion:
		return nil, fmt.Errorf("entry %s: format %d, this kache reads up to %d (upgrade kache)", key, v, FormatVersion)
	}
	m := &Manifest{Version: v, Key: key, Kind: get(metaKind), SHA256: get(metaSHA256), CreatedAt: get(metaCreated)}
	if m.Size, err = strconv.ParseInt(get(metaSize), 10, 64); err != nil || m.Size < 0 {
		return nil, bad(fmt.Sprintf("size %q", get(metaSize)))
	}
	if _, err := hex.DecodeString(m.SHA256); err != nil || len(m.SHA256) != sha256.Size*2 {
		return nil, bad(fmt.Sprintf("sha256 %q", m.SHA256))
	}
	switch m.Kind {
	case KindFile:
		return m, parseMode(m, get(metaMode), bad)
	case KindDir:
		return m, parseDirLimits(m, get(metaEntries), get(metaUnpacked), bad)
	}
	return nil, bad(fmt.Sprintf("kind %q", m.Kind))
}

func parseMode(m *Manifest, s string, bad func(string) error) error {
	mode, err := strconv.ParseUint(s, 8, 32)
	if err != nil || mode > 0o777 {
		return bad(fmt.Sprintf("mode %q", s))
	}
	m.Mode = uint32(mode)
	return nil
}

func parseDirLimits(m *Manifest, entries, unpacked string, bad func(string) error) error {
	n, err := strconv.Atoi(entries)
	if err != nil || n < 0 || n > maxArchiveEntries {
		return bad(fmt.Sprintf("entries %q (at most %d)", entries, maxArchiveEntries))
	}
	u, err := strconv.ParseInt(unpacked, 10, 64)
	if err != nil || u < 0 || u > MaxUnpackedBytes {
		return bad(fmt.Sprintf("unpacked size %q (at most %d)", unpacked, int64(MaxUnpackedBytes)))
	}
	m.Entries, m.Unpacked = n, u
	return nil
}

// limits are the most members and regular-file bytes the directory entry
// may unpack to: exact in v2 (from the metadata), from the file list in v1.
func (m *Manifest) limits() (entries int, unpacked int64) {
	if m.Version >= FormatVersion {
		return m.Entries, m.Unpacked
	}
	for _, f := range m.Files {
		unpacked += f.Size
	}
	return maxArchiveEntries, min(unpacked, MaxUnpackedBytes)
}

func nowRFC3339() string { return time.Now().UTC().Format(time.RFC3339) }
