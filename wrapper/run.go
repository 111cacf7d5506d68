package wrapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	"github.com/kunobi-ninja/kache/internal/store"
)

// Daemon is what the wrapper asks of kache's daemon. Both calls bound
// their own waits; neither ever starts the daemon for a check.
type Daemon interface {
	// RemoteCheck asks whether key is on the remote, downloading it into
	// the store if so; offline or any error is a miss with the reason.
	RemoteCheck(ctx context.Context, key string, deadline time.Duration) (bool, error)
	// Upload hands entries (key → store path) to the daemon, writing
	// their intents into the spool first; it may start the daemon.
	Upload(ctx context.Context, entries map[string]string) error
}

// Options are the wrapper's surroundings, filled by the cli.
type Options struct {
	CacheDir string
	Store    store.Store
	Salt     string
	// Daemon is nil when no remote is configured: entries stay local.
	Daemon        Daemon
	CheckDeadline time.Duration
	Stdout        io.Writer
	Stderr        io.Writer
	Getenv        func(string) string
	Environ       []string
	Cwd           string
}

// call is one wrapper invocation.
type call struct {
	o     Options
	inv   *Invocation
	n     normalizer
	store store.Store
	ids   identityCache
	shape Shape
	rec   buildlog.Record
	start time.Time
}

// Run handles `kache RUSTC ARGS...` and returns the exit code the build
// must see: rustc's, whatever happened to kache.
func Run(ctx context.Context, o Options, argv []string) int {
	c := &call{o: o, start: time.Now(), store: o.Store, ids: identityCache{filepath.Join(o.CacheDir, "wrapper", "ids")}}
	c.rec = buildlog.Record{At: c.start, Tool: "rustc", Pid: os.Getpid(), Cargo: CargoPid()}
	code := c.run(ctx, argv)
	c.rec.Exit, c.rec.Ms = code, ms(time.Since(c.start))
	_ = buildlog.Append(filepath.Join(o.CacheDir, "builds.jsonl"), c.rec)
	return code
}

func (c *call) run(ctx context.Context, argv []string) (code int) {
	if len(argv) == 0 {
		fmt.Fprintln(c.o.Stderr, "kache: no compiler given")
		return 2
	}
	inv, err := Parse(argv[0], argv[1:])
	if err != nil {
		return c.passthrough(ctx, argv, err)
	}
	c.inv, c.rec.Crate, c.rec.Types = inv, inv.CrateName, strings.Join(inv.CrateTypes, ",")
	ran := false
	defer func() {
		if r := recover(); r != nil && !ran {
			code = c.passthrough(ctx, argv, fmt.Errorf("kache bug: %v", r))
		}
	}()
	if err := c.prepare(); err != nil {
		return c.passthrough(ctx, argv, err)
	}
	if code, ok := c.lookup(ctx); ok {
		return code
	}
	ran = true
	return c.compile(ctx, argv)
}

// prepare computes the shape: rustc's identity, the linker's, the
// normalised arguments and environment.
func (c *call) prepare() error {
	c.n = newNormalizer(c.o.Cwd, c.inv.OutDir)
	rid, err := c.ids.rustcIdentity(c.inv.Rustc)
	if err != nil {
		return err
	}
	lid := ""
	if c.inv.Linked() {
		if lid, err = c.ids.linkerIdentity(c.inv.Linker); err != nil {
			return err
		}
	}
	env := envInputs(c.o.Getenv, c.o.Environ)
	c.shape = c.inv.shape(c.n, rid, lid, c.o.Salt, env, c.o.Getenv)
	return nil
}

// passthrough runs the compiler unchanged and counts why.
func (c *call) passthrough(ctx context.Context, argv []string, why error) int {
	var u *Uncacheable
	if errors.As(why, &u) {
		c.rec.Reason = u.Reason
	} else {
		c.rec.Reason = "kache error: " + why.Error()
		fmt.Fprintf(c.o.Stderr, "kache: running rustc without the cache: %v\n", why)
	}
	c.rec.Outcome = buildlog.Passthrough
	code, _ := runCompiler(ctx, argv, c.o.Stdout, c.o.Stderr, nil)
	return code
}

func (c *call) manifestDir() string { return filepath.Join(c.o.CacheDir, "wrapper", "direct") }

func (c *call) envRef(name string) EnvRef {
	v, ok := os.LookupEnv(name)
	if c.o.Getenv != nil {
		v = c.o.Getenv(name)
		ok = v != "" || lookupIn(c.o.Environ, name)
	}
	if !ok {
		return EnvRef{Name: name}
	}
	if name == "OUT_DIR" {
		v = c.n.norm(v)
	}
	return EnvRef{Name: name, Value: &v}
}

func lookupIn(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Passthrough runs the compiler unchanged, recording why, for a caller
// that cannot set kache up.
func Passthrough(ctx context.Context, o Options, argv []string) int {
	c := &call{o: o, start: time.Now()}
	c.rec = buildlog.Record{At: c.start, Tool: "rustc", Pid: os.Getpid(), Cargo: CargoPid()}
	return c.passthrough(ctx, argv, &Uncacheable{"kache is not set up"})
}
