package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// decodeFile decodes config.toml's bytes, refusing keys kache does not
// know. The decoder is go-toml/v2 rather than BurntSushi/toml because every
// client start pays its package initialisation, and BurntSushi's loads the
// local time zone at init: about 1 ms a start on this project's machine
// (docs/benchmarks.md).
func decodeFile(file string, data []byte) (fileConfig, error) {
	var fc fileConfig
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&fc); err != nil {
		return fc, fmt.Errorf("%w: %s: %s (fix the file or point KACHE_CONFIG elsewhere)", ErrInvalid, file, describe(err))
	}
	return fc, nil
}

// describe says what is wrong and where, in the file's terms: the line,
// the key, and for a value of the wrong type what was expected, never the
// Go field the decoder names.
func describe(err error) string {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		de := se.Errors[0]
		row, _ := de.Position()
		return fmt.Sprintf("line %d: unknown key %q; the keys are daemon_idle_timeout_secs, drain_timeout_secs, [s3] bucket, prefix, region, endpoint, concurrency and [remote] dir (README, Configuration)", row, strings.Join(de.Key(), "."))
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return err.Error()
	}
	row, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if got, want, ok := wrongType(msg); ok {
		msg = fmt.Sprintf("%s where %s is expected", article(got), want)
	}
	if key := strings.Join(de.Key(), "."); key != "" {
		return fmt.Sprintf("line %d, column %d: %s: %s", row, col, key, msg)
	}
	return fmt.Sprintf("line %d, column %d: %s", row, col, msg)
}

// wrongType reads go-toml's "cannot decode TOML <kind> into struct field
// <field> of type <go type>" as the TOML kind found and the kind wanted.
func wrongType(msg string) (got, want string, ok bool) {
	rest, ok := strings.CutPrefix(msg, "cannot decode TOML ")
	if !ok {
		return "", "", false
	}
	got, _, _ = strings.Cut(rest, " ")
	switch {
	case strings.HasSuffix(rest, "of type string"):
		want = "a string"
	case strings.HasSuffix(rest, "int64"):
		want = "a whole number"
	default:
		want = "another kind of value"
	}
	return got, want, true
}

// article puts "a" or "an" before a TOML kind's name.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
