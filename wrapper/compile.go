package wrapper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

// runCompiler runs argv with the wrapper's stdin, streaming its output to
// stdout and stderr (cargo reads rustc's JSON messages as they come:
// pipelining starts dependents on the rmeta notice), and keeping a copy
// when capture is given. Interrupts reach rustc through the process
// group; the wrapper waits for rustc and exits as it did.
func runCompiler(ctx context.Context, argv []string, stdout, stderr io.Writer, capture *[2]bytes.Buffer) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if capture != nil {
		cmd.Stdout = io.MultiWriter(stdout, &capture[0])
		cmd.Stderr = io.MultiWriter(stderr, &capture[1])
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "kache: cannot run %s: %v\n", argv[0], err)
		return 127, err
	}
	go forward(sig, cmd.Process)
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), err
		}
		return ee.ExitCode(), err
	}
	return 1, err
}

// forward passes a signal sent to the wrapper alone on to rustc.
func forward(sig <-chan os.Signal, p *os.Process) {
	for s := range sig {
		_ = p.Signal(s)
	}
}

// compile runs rustc, then stores what it wrote: a successful compile
// becomes an entry, its shape's manifest learns the files it read, and
// the entry goes to the daemon. Failures to store are reported, never
// returned: the build has rustc's result either way.
func (c *call) compile(ctx context.Context, argv []string) int {
	var capture [2]bytes.Buffer
	began := time.Now()
	code, _ := runCompiler(ctx, argv, c.o.Stdout, c.o.Stderr, &capture)
	took := time.Since(began)
	c.rec.Outcome = buildlog.Miss
	if code != 0 {
		c.rec.Outcome, c.rec.Reason = buildlog.Passthrough, fmt.Sprintf("rustc exited %d: not cached", code)
		return code
	}
	if err := c.store1(ctx, capture, began, took); err != nil {
		c.rec.Reason = "not stored: " + err.Error()
	}
	return code
}

// store1 turns a finished compile into an entry.
func (c *call) store1(ctx context.Context, capture [2]bytes.Buffer, began time.Time, took time.Duration) error {
	d, err := readSmall(filepath.Join(c.inv.OutDir, c.inv.CrateName+c.inv.ExtraFile+".d"), 64<<20)
	if err != nil {
		return err
	}
	v, err := c.variant(ParseDepInfo(d), began)
	if err != nil {
		return err
	}
	key := entryKey(c.shape.Hash, v.Files, v.Env)
	meta := Meta{Version: entryVersion, Crate: c.inv.CrateName, Key: key, Files: c.inv.outputs(),
		Stdout: c.n.norm(capture[0].String()), Stderr: c.n.norm(capture[1].String()), CompileMs: ms(took)}
	if err := c.save(meta); err != nil {
		return err
	}
	c.rec.Key, c.rec.Inputs = key, c.inputs(v)
	mpath := manifestPath(c.manifestDir(), c.shape.Hash)
	if err := writeManifest(mpath, readManifest(mpath), v); err != nil {
		return err
	}
	return c.handOver(ctx, key, v)
}

// variant lists the files the compile read (the dep-info's sources and
// the --extern artifacts) with their digests and the variables it read.
// A source changed after the compile began is refused: its content may
// not be what rustc compiled.
func (c *call) variant(d DepInfo, began time.Time) (Variant, error) {
	var v Variant
	paths := d.Files
	for _, e := range c.inv.Externs {
		if e.Path != "" {
			paths = append(paths, e.Path)
		}
	}
	for _, p := range paths {
		abs := c.n.abs(p)
		fi, err := os.Stat(abs)
		if err != nil {
			return v, err
		}
		if fi.ModTime().After(began) {
			return v, fmt.Errorf("%s changed during the compile", p)
		}
		stamp, err := fileStamp(abs)
		if err != nil {
			return v, err
		}
		dg, err := c.digestAt(abs, stamp)
		if err != nil {
			return v, err
		}
		v.Files = append(v.Files, FileRef{Path: c.n.norm(p), Digest: dg, Stamp: stamp})
	}
	for _, name := range sortedKeys(d.Env) {
		v.Env = append(v.Env, c.envRef(name))
	}
	return v, nil
}

// inputs names the key's inputs for why-miss: the shape's parts, each
// file and each variable.
func (c *call) inputs(v Variant) map[string]string {
	in := make(map[string]string, len(c.shape.Inputs)+len(v.Files)+len(v.Env))
	for k, d := range c.shape.Inputs {
		in[k] = d
	}
	for _, f := range v.Files {
		in["file:"+f.Path] = f.Digest[:16]
	}
	for _, e := range v.Env {
		h := newHasher("part")
		h.str(e.value())
		in["env-dep:"+e.Name] = h.hex()[:16]
	}
	return in
}

// handOver gives the entry and the shape's manifest to the daemon.
func (c *call) handOver(ctx context.Context, key string, v Variant) error {
	if c.o.Daemon == nil {
		return nil
	}
	entries := map[string]string{key: c.store.Path(key)}
	if mk, err := c.saveRemoteManifest(v); err == nil {
		entries[mk] = c.store.Path(mk)
	}
	return c.o.Daemon.Upload(ctx, entries)
}

// saveRemoteManifest stores the shape's manifest as an entry (without the
// local stamps) for the remote; the first one stored stays.
func (c *call) saveRemoteManifest(v Variant) (string, error) {
	mk := remoteManifestKey(c.shape.Hash)
	if _, err := os.Lstat(c.store.Path(mk)); err == nil {
		return "", os.ErrExist
	}
	tmp, err := c.store.Begin(mk)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	clean := Variant{Env: v.Env}
	for _, f := range v.Files {
		clean.Files = append(clean.Files, FileRef{Path: f.Path, Digest: f.Digest})
	}
	if err := writeManifest(filepath.Join(tmp, "manifest.json"), Manifest{Shape: c.shape.Hash}, clean); err != nil {
		return "", err
	}
	return mk, c.store.Commit(mk, tmp)
}
