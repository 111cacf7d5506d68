package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/rpc"
)

// driftWarning prints one line when the daemon that answered runs with a
// configuration other than this shell's (another config.toml, other
// KACHE_* variables): the daemon reads its configuration once, so this
// shell's settings are not the ones in effect. The common case costs one
// small read and a hash (config.InputFingerprint); only a mismatch parses
// the configuration and asks the daemon for its fields, to name the keys.
func driftWarning(ctx context.Context, env *Env, p config.Paths, seen string) {
	if seen == "" || seen == config.InputFingerprint(env.Getenv) {
		return
	}
	fmt.Fprintf(env.Stderr, "kache: warning: the daemon runs with another configuration than this shell's (%s): "+
		"run `kache daemon restart` to use this one, or set this shell's like the daemon's (see `kache daemon status`)\n", driftKeys(ctx, env, p))
}

// driftKeys names what differs, as well as can be told.
func driftKeys(ctx context.Context, env *Env, p config.Paths) string {
	own, err := config.Load(env.Getenv)
	if err != nil {
		return "this shell's configuration is invalid: " + err.Error()
	}
	c := &rpc.Client{Socket: p.Socket, CallTimeout: statusTimeout}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil || st.ConfigFields == nil {
		return "config.toml or KACHE_* variables"
	}
	if d := config.DiffFields(own.Fields(), st.ConfigFields); len(d) > 0 {
		return "differs: " + strings.Join(d, ", ")
	}
	return "the same settings, from another config file or written otherwise"
}
