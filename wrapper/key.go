package wrapper

import (
	"slices"
	"sort"
	"strings"
)

// keyVersion changes whenever the key's inputs or the entry format do, so
// entries of an older kache are never read as this one's.
const keyVersion = "kache-rust-1"

// envInputs are variables that change rustc's output without appearing in
// its arguments or its dep-info (CARGO_CFG_* and the RUSTFLAGS forms are
// already reflected in the arguments cargo builds; they are hashed too, as
// the issue asks, at no cost to hits).
func envInputs(getenv func(string) string, environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CARGO_CFG_") {
			out = append(out, name)
		}
	}
	for _, name := range []string{"RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_BOOTSTRAP", "RUSTDOCFLAGS"} {
		if getenv(name) != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Shape is the invocation's first-level hash (direct mode's key of the
// manifest): everything but the content of the files rustc reads. Inputs
// names each part's digest, for why-miss.
type Shape struct {
	Hash   string
	Inputs map[string]string
}

// shapeParts are the named inputs of a Shape, in a fixed order.
type shapeParts struct {
	names  []string
	values []string
}

func (p *shapeParts) add(name, value string) {
	p.names = append(p.names, name)
	p.values = append(p.values, value)
}

// shape hashes the invocation: rustc's identity, the arguments with the
// checkout's directories replaced, the -C options and --cfg values sorted
// (their order does not matter to rustc), -C incremental reduced to its
// presence, --extern reduced to name and normalised path (their content
// is in the manifest's files), the environment inputs, the linker for
// linked outputs, and the configured salt.
func (inv *Invocation) shape(n normalizer, rustcID, linkerID, salt string, env []string, getenv func(string) string) Shape {
	var p shapeParts
	p.add("version", keyVersion)
	p.add("rustc", rustcID)
	p.add("crate-name", inv.CrateName)
	p.add("crate-types", strings.Join(inv.CrateTypes, ","))
	p.add("target", inv.Target)
	p.add("args", strings.Join(inv.canonicalArgs(n), "\x00"))
	p.add("codegen", strings.Join(sorted(inv.Codegen), "\x00"))
	p.add("cfg", strings.Join(sorted(inv.Cfgs), "\x00"))
	p.add("incremental", boolWord(inv.Incr))
	for _, name := range env {
		p.add("env:"+name, n.norm(getenv(name)))
	}
	if inv.Linked() {
		p.add("linker", linkerID)
	}
	p.add("salt", salt)
	h := newHasher(keyVersion + " shape")
	in := make(map[string]string, len(p.names))
	for i, name := range p.names {
		h.field(name, p.values[i])
		d := newHasher("part")
		d.str(p.values[i])
		in[name] = d.hex()[:16]
	}
	return Shape{Hash: h.hex(), Inputs: in}
}

// canonicalArgs are the arguments other than -C, --cfg and --extern (hashed
// on their own), with the checkout's directories replaced.
func (inv *Invocation) canonicalArgs(n normalizer) []string {
	var out []string
	args := inv.Args
	for i := 0; i < len(args); i++ {
		flag, val, hasVal := splitFlag(args[i])
		if takesValue(flag) && !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		switch flag {
		case "-C", "--codegen", "--cfg":
			continue
		case "--extern":
			name, path, _ := strings.Cut(val, "=")
			out = append(out, "--extern", name+"="+n.norm(path))
			continue
		}
		if takesValue(flag) {
			out = append(out, flag, n.norm(val))
		} else {
			out = append(out, n.norm(args[i]))
		}
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// entryKey is the entry's key: the shape, then each file rustc read (its
// normalised path and content digest, externs included) and each
// environment variable it read (env!, option_env!), with its value.
func entryKey(shape string, files []FileRef, env []EnvRef) string {
	h := newHasher(keyVersion + " entry")
	h.str(shape)
	for _, f := range files {
		h.field(f.Path, f.Digest)
	}
	for _, e := range env {
		h.field(e.Name, e.value())
	}
	return "rust-" + h.hex()[:56]
}

// FileRef is one file an entry's compile read.
type FileRef struct {
	Path   string `json:"path"` // normalised
	Digest string `json:"digest"`
	// Stamp is the local file's size, mtime, inode and ctime when Digest
	// was taken: while it matches, the file is not read again.
	Stamp string `json:"stamp,omitempty"`
}

// EnvRef is one variable an entry's compile read.
type EnvRef struct {
	Name  string  `json:"name"`
	Value *string `json:"value"` // normalised; nil: unset
}

func (e EnvRef) value() string {
	if e.Value == nil {
		return "\x00unset"
	}
	return "=" + *e.Value
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
