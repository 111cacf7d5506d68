package config

import (
	"bytes"
	"fmt"
)

// maxNesting bounds how deeply arrays and inline tables may nest in
// config.toml. kache's keys are all scalars in at most one table, so a real
// config nests one level; the TOML decoder's time grows faster than the
// square of the depth (3000 nested inline tables took 5 s, 300000 exhausted
// memory), so the bytes are checked before decoding.
const maxNesting = 32

// checkNesting refuses data whose brackets and braces nest deeper than
// maxNesting, outside strings and comments, naming the line.
func checkNesting(path string, data []byte) error {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '#':
			i = skipPast(data, i, "\n") - 1
		case '"', '\'':
			i = skipString(data, i) - 1
		case '[', '{':
			if depth++; depth > maxNesting {
				line := bytes.Count(data[:i], []byte("\n")) + 1
				return fmt.Errorf("%w: %s: line %d: arrays or tables nested over %d deep; kache's settings are plain values in [s3] and [remote]: fix the file",
					ErrInvalid, path, line, maxNesting)
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// skipString returns the offset just past the TOML string that starts at
// data[i]: basic ("...", escapes with \), literal ('...'), or their
// multi-line forms with tripled quotes. A single-line string also ends at a
// newline, where the decoder will report it unterminated.
func skipString(data []byte, i int) int {
	q := data[i]
	if bytes.HasPrefix(data[i:], []byte{q, q, q}) {
		return skipPast(data, i+3, string([]byte{q, q, q}))
	}
	for j := i + 1; j < len(data); j++ {
		switch {
		case data[j] == '\\' && q == '"':
			j++
		case data[j] == q:
			return j + 1
		case data[j] == '\n':
			return j
		}
	}
	return len(data)
}

// skipPast returns the offset just past the first end at or after from
// (honouring backslash escapes in a basic multi-line string), or len(data).
func skipPast(data []byte, from int, end string) int {
	for j := from; j < len(data); j++ {
		if end == `"""` && data[j] == '\\' {
			j++
			continue
		}
		if bytes.HasPrefix(data[j:], []byte(end)) {
			return j + len(end)
		}
	}
	return len(data)
}
