package wrapper

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/atomicfile"
)

// toolStamp identifies a file by path, size, mtime, inode and ctime: the
// cache key of what kache learned about it (ccache's fast path). Any
// rewrite of the file changes its ctime.
func toolStamp(path string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "", err
	}
	h := newHasher("kache-stamp")
	h.str(path)
	h.str(fmt.Sprint(st.Size, st.Mtim.Nano(), st.Ino, st.Ctim.Nano()))
	return h.hex()[:32], nil
}

// resolve finds a program the way exec does, and follows symlinks, so the
// identity belongs to the file that runs.
func resolve(prog string) (string, error) {
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", err
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// identityCache remembers, per tool file stamp, what identifies the tool:
// for rustc its `-vV`, sysroot and standard library file names (computed
// once per rustc binary, not once per invocation: a parallel build would
// otherwise start rustc hundreds of times); for a linker its content
// digest.
type identityCache struct{ dir string }

func (c identityCache) get(stamp string, compute func() (string, error)) (string, error) {
	p := filepath.Join(c.dir, stamp)
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
		return string(b), nil
	}
	v, err := compute()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.dir, 0o700); err == nil {
		_ = atomicfile.WriteFile(p, []byte(v), 0o600, atomicfile.ProcessSafe)
	}
	return v, nil
}

// rustcIdentity is rustc's version text, host and the file names of its
// standard library (they carry a hash of the std build), so another
// toolchain, or a rebuilt one with the same version, never shares keys.
func (c identityCache) rustcIdentity(rustc string) (string, error) {
	path, err := resolve(rustc)
	if err != nil {
		return "", err
	}
	stamp, err := toolStamp(path)
	if err != nil {
		return "", err
	}
	return c.get("rustc-"+stamp, func() (string, error) { return probeRustc(path) })
}

func probeRustc(path string) (string, error) {
	vv, err := runQuiet(path, "-vV")
	if err != nil {
		return "", fmt.Errorf("%s -vV: %w", path, err)
	}
	if !strings.Contains(vv, "release:") {
		return "", fmt.Errorf("%s -vV does not look like rustc", path)
	}
	sysroot, err := runQuiet(path, "--print", "sysroot")
	if err != nil {
		return "", fmt.Errorf("%s --print sysroot: %w", path, err)
	}
	host := ""
	for _, l := range strings.Split(vv, "\n") {
		if h, ok := strings.CutPrefix(l, "host: "); ok {
			host = h
		}
	}
	return vv + "\nstd: " + stdFiles(strings.TrimSpace(sysroot), host), nil
}

// stdFiles lists the host standard library's files with their sizes.
func stdFiles(sysroot, host string) string {
	dir := filepath.Join(sysroot, "lib", "rustlib", host, "lib")
	des, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, de := range des {
		if fi, err := de.Info(); err == nil {
			fmt.Fprintf(&b, "%s:%d ", de.Name(), fi.Size())
		}
	}
	return b.String()
}

// linkerIdentity is the content digest of the linker rustc will run.
func (c identityCache) linkerIdentity(linker string) (string, error) {
	if linker == "" {
		linker = "cc"
	}
	path, err := resolve(linker)
	if err != nil {
		return "", err
	}
	stamp, err := toolStamp(path)
	if err != nil {
		return "", err
	}
	return c.get("tool-"+stamp, func() (string, error) { return fileDigest(path) })
}

func runQuiet(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout = &out
	err := cmd.Run()
	return out.String(), err
}
