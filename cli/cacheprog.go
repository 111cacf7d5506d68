package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kunobi-ninja/kache/cacheprog"
	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/upload"
	"github.com/kunobi-ninja/kache/rpc"
	ucli "github.com/urfave/cli/v2"
)

// Bounds of a go command session (docs/cacheprog.md).
const (
	// goCheckDeadline bounds the remote check of one get: the go command
	// asks for every action, so a slow remote must not slow the build.
	goCheckDeadline = time.Second
	// goCloseWait bounds how long close waits to hand uploads to the
	// daemon (starting it if need be); the spool keeps the rest.
	goCloseWait = 5 * time.Second
	// goLeaseEvery is how often a session marks the entries it served as
	// used, well inside the minute eviction spares.
	goLeaseEvery = 20 * time.Second
	// goChecks is how many remote checks a session has in flight at once.
	goChecks = 4
)

func cacheprogCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "cacheprog",
		Usage: "serve the go command's build cache: GOCACHEPROG=\"kache cacheprog\" go build ./...",
		Description: "Speaks the GOCACHEPROG protocol on stdin and stdout (the go command starts it; Go 1.24+).\n" +
			"Objects live in kache's local store (entries go-<ActionID>), shared with the Rust wrapper and\n" +
			"bounded by the same cap. With a remote configured, a local miss asks the daemon (never starting\n" +
			"it; 1 s at most) and every put is handed to the daemon for upload (it may start it). kache's own\n" +
			"failures are misses or local puts, never a failed build. See docs/cacheprog.md.\n" +
			"Exit codes: 0 the go command closed the session; 2 the input broke the protocol (the message\n" +
			"says how).",
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("cacheprog takes no arguments, got %q", c.Args().Slice())
			}
			return runCacheprog(c.Context, env)
		},
	}
}

// runCacheprog serves one go command. Without usable paths or
// configuration it still serves, from scratch files only.
func runCacheprog(ctx context.Context, env *Env) error {
	o := cacheprog.Options{Stdin: env.stdin(), Stdout: env.Stdout, Stderr: env.Stderr,
		CheckDeadline: goCheckDeadline, CloseWait: goCloseWait, LeaseEvery: goLeaseEvery}
	p, cfg, err := wrapperSetup(env)
	if err == nil {
		o.Store, err = upload.Store(p)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "kache cacheprog: serving without kache's store: %v\n", err)
	} else {
		o.UseStore, o.CacheDir = true, p.CacheDir
		if cfg.HasRemote() {
			d := newGoDaemon(env, p)
			defer d.close()
			o.Daemon = d
		}
	}
	if err := cacheprog.Serve(ctx, o); err != nil {
		return protocolError{err}
	}
	return nil
}

// protocolError is input that broke the GOCACHEPROG protocol: bad input,
// exit 2, with the protocol's own message.
type protocolError struct{ error }

func (e protocolError) Is(target error) bool { return target == ErrUsage }
func (e protocolError) Unwrap() error        { return e.error }

// goDaemon is the daemon as a go command session uses it: the wrapper's
// rules (checks never start it, uploads may), with a few check
// connections, since the go command asks for several actions at once.
type goDaemon struct {
	up     *wrapperDaemon
	checks chan *rpc.Client
}

func newGoDaemon(env *Env, p config.Paths) *goDaemon {
	d := &goDaemon{up: &wrapperDaemon{env: env, p: p, by: "auto:cacheprog", build: cacheprog.GoCommandPid}, checks: make(chan *rpc.Client, goChecks)}
	for range goChecks {
		d.checks <- &rpc.Client{Socket: p.Socket, Epoch: env.epoch(), DialTimeout: 100 * time.Millisecond}
	}
	return d
}

func (d *goDaemon) RemoteCheck(ctx context.Context, key string, deadline time.Duration) (bool, error) {
	c := <-d.checks
	defer func() { d.checks <- c }()
	found, err := c.RemoteCheck(ctx, key, deadline)
	if rpc.KindOf(err) == rpc.ErrTimeout || errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", cacheprog.ErrSlow, err)
	}
	return found, err
}

func (d *goDaemon) Upload(ctx context.Context, entries map[string]string) error {
	return d.up.Upload(ctx, entries)
}

// close closes the check connections; the session's gets are done.
func (d *goDaemon) close() {
	for range goChecks {
		(<-d.checks).Close()
	}
}

// stdin is the process's stdin unless a test set another.
func (env *Env) stdin() io.Reader {
	if env.Stdin != nil {
		return env.Stdin
	}
	return os.Stdin
}
