package supervisor

import (
	"runtime"
	"sync"

	"github.com/kunobi-ninja/kache/internal/buildid"
	"github.com/kunobi-ninja/kache/states"
)

// The content identity of builds (docs/lifecycle.md, "Identity"): the Go
// build ID of kache-daemon, beside the mtime epoch. The rule that keeps two
// binaries used alternately from making the daemon flap: a client's other
// build hands over only when the file at the daemon's own path now has the
// client's build. A client of another installation never does (its build
// is not at our path); after the hand-over the successor runs the build at
// the path, so the same client finds the builds equal.

// ownBuild is the build ID of the running binary. On Linux it is read
// through /proc/self/exe, the file this process runs even if the path now
// holds another; elsewhere from the path it was started by.
func ownBuild(daemonExe string) string {
	path := daemonExe
	if runtime.GOOS == "linux" {
		path = "/proc/self/exe"
	}
	id, err := buildid.Read(path)
	if err != nil {
		return ""
	}
	return id
}

// pathBuild caches the build ID of the file at a path by its stat, so a
// stream of requests from another build reads it once per replacement.
type pathBuild struct {
	mu sync.Mutex
	id fileID
	b  string
}

// get returns the build ID of the file now at path ("" if unreadable).
func (c *pathBuild) get(path string) string {
	id, err := statID(path)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if id != c.id {
		c.id, c.b = id, ""
		if b, err := buildid.Read(path); err == nil {
			c.b = b
		}
	}
	return c.b
}

// otherBuild reports whether a request's client build asks for a hand-over:
// it differs from ours and the file at our path has it now.
func (d *Daemon) otherBuild(client string) bool {
	if client == "" || d.o.Build == "" || client == d.o.Build {
		return false
	}
	return d.atPath.get(d.successorExe()) == client
}

// buildChanged reports whether the kache-daemon at our path is another build.
func (d *Daemon) buildChanged() bool {
	if d.o.Build == "" {
		return false
	}
	b := d.atPath.get(d.successorExe())
	return b != "" && b != d.o.Build
}

// postClientBuild asks the loop for a hand-over to the client's build.
func (d *Daemon) postClientBuild(client string) {
	d.post(states.ClientBuild, "a client of build "+short(client)+" found it at "+d.successorExe()+"; this daemon is build "+short(d.o.Build))
}

// short is the content part of a build ID (its last component), for logs.
func short(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			return id[i+1:]
		}
	}
	return id
}
