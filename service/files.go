package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// writeAtomic replaces path with data through atomicfile, so a manager
// reading the directory never sees half a file. It reports whether path
// existed before.
func writeAtomic(path string, data []byte, perm os.FileMode) (existed bool, err error) {
	existed = exists(path)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return existed, fmt.Errorf("create %s: %w", dir, err)
	}
	return existed, atomicfile.WriteFile(path, data, perm, atomicfile.Durable)
}

// removeFiles deletes paths, ignoring those already gone, and returns the
// ones it removed.
func removeFiles(paths ...string) ([]string, error) {
	var removed []string
	for _, p := range paths {
		err := os.Remove(p)
		switch {
		case err == nil:
			removed = append(removed, p)
		case !errors.Is(err, os.ErrNotExist):
			return removed, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return removed, nil
}

// envName reports whether k is a portable environment variable name:
// [A-Za-z_][A-Za-z0-9_]*.
func envName(k string) bool {
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}

// validate checks what Install would write, so a bad path is refused with a
// message instead of producing a unit the manager silently ignores.
func validate(o Options) error {
	if err := validateExe(o.Exe); err != nil {
		return err
	}
	if !filepath.IsAbs(o.Socket) {
		return fmt.Errorf("socket path %q is not absolute; set KACHE_SOCKET_PATH to an absolute path", o.Socket)
	}
	for k, v := range o.Env {
		if !envName(k) {
			return fmt.Errorf("environment variable name %q is not valid", k)
		}
		if hasControl(v) {
			return fmt.Errorf("environment variable %s contains a control character; unset it or fix its value", k)
		}
	}
	return managerFor(o.OS).validate(o)
}

// validateExe checks that exe is an absolute path to an executable file.
func validateExe(exe string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("kache binary path %q is not absolute; run install from the installed kache binary", exe)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return fmt.Errorf("kache binary: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("kache binary %s is not an executable file", exe)
	}
	if hasControl(exe) {
		return fmt.Errorf("kache binary path %q contains a control character; move kache to a plain path", exe)
	}
	return nil
}

// validateSystemd refuses what systemd cannot express: it rejects quotes
// and backslashes in an executable name (checked with systemd 252), and a
// socket path is taken verbatim up to the end of the line.
func validateSystemd(o Options) error {
	if strings.ContainsAny(o.Exe, `"'\`) {
		return fmt.Errorf("systemd refuses executable paths with quotes or backslashes (%s); move kache to a plain path such as ~/.local/bin/kache", o.Exe)
	}
	if strings.ContainsAny(o.Socket, `"'\`) || hasControl(o.Socket) || strings.TrimSpace(o.Socket) != o.Socket {
		return fmt.Errorf("socket path %q cannot be written to a systemd socket unit; set KACHE_SOCKET_PATH to a plain absolute path", o.Socket)
	}
	return nil
}

// hasControl reports whether s holds a control character such as a newline,
// which would end a unit file line early.
func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}
