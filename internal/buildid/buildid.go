// Package buildid reads the Go build ID a binary carries, as content
// identity beside the mtime epoch: two builds with equal mtimes (Nix sets
// every store file's mtime to 1 s) still differ here. It reads only the
// first pages of the file, where the linker puts the ID, so it costs one
// open and one small read, not a hash of the file.
package buildid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotFound means the first pages hold no Go build ID (not a Go binary,
// or one linked without it).
var ErrNotFound = errors.New("no Go build ID in the binary's first pages")

// elfPage is what is read first: the ELF note .note.go.buildid follows the
// program headers, inside the first page.
const elfPage = 4 << 10

// rawLimit is how far the raw form is looked for (Mach-O and others keep
// it at the start of the text segment, as `go tool buildid` reads it).
const rawLimit = 32 << 10

// The ELF note: namesz 4, descsz n, type 4 (ELF_NOTE_GOBUILDID_TAG), name "Go\0\0".
var elfNoteTail = []byte{4, 0, 0, 0, 'G', 'o', 0, 0}

// The raw form the linker writes into the text: \xff Go build ID: "<id>"\n \xff.
var rawPrefix = []byte("\xff Go build ID: \"")

// Read returns the Go build ID of the binary at path.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("build ID of %s: %w", path, err)
	}
	defer f.Close()
	var page [elfPage]byte
	n, err := io.ReadFull(f, page[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("build ID of %s: %w", path, err)
	}
	if id, ok := fromELFNote(page[:n]); ok {
		return id, nil
	}
	buf := append(make([]byte, 0, rawLimit), page[:n]...)
	if n == elfPage {
		m, _ := io.ReadFull(f, buf[elfPage:rawLimit])
		buf = buf[:elfPage+m]
	}
	n = len(buf)
	if id, ok := fromRaw(buf[:n]); ok {
		return id, nil
	}
	return "", fmt.Errorf("build ID of %s: %w", path, ErrNotFound)
}

// fromELFNote finds the Go note in b and returns its description.
func fromELFNote(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return "", false
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], elfNoteTail)
		if i < 0 {
			return "", false
		}
		i += off
		off = i + 1
		if i < 8 || binary.LittleEndian.Uint32(b[i-8:]) != 4 {
			continue // namesz must be 4: the bytes matched by chance
		}
		size := int(binary.LittleEndian.Uint32(b[i-4:]))
		start := i + len(elfNoteTail)
		if size > 0 && start+size <= len(b) {
			return string(b[start : start+size]), true
		}
	}
}

// fromRaw finds the raw form in b.
func fromRaw(b []byte) (string, bool) {
	i := bytes.Index(b, rawPrefix)
	if i < 0 {
		return "", false
	}
	rest := b[i+len(rawPrefix):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 {
		return "", false
	}
	return string(rest[:j]), true
}
