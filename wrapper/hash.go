package wrapper

import (
	"encoding/binary"
	"encoding/hex"
	"io"

	"lukechampine.com/blake3"
)

// hasher builds a key from labelled fields; every field is length-framed
// so no two different sequences of fields hash alike.
type hasher struct{ h *blake3.Hasher }

func newHasher(domain string) hasher {
	h := hasher{blake3.New(32, nil)}
	h.str(domain)
	return h
}

func (h hasher) str(s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	h.h.Write(n[:])
	io.WriteString(h.h, s)
}

func (h hasher) field(name, value string) { h.str(name); h.str(value) }

func (h hasher) hex() string { return hex.EncodeToString(h.h.Sum(nil)) }

// fileDigest is the BLAKE3 of a file's content, hex.
func fileDigest(path string) (string, error) {
	_, d, err := digestFile(path)
	return d, err
}
