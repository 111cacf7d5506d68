// Package wrapper is kache as cargo's RUSTC_WRAPPER: it decides whether a
// rustc invocation can be cached, computes its key without running rustc
// when the sources it read last time still match (direct mode), restores
// a hit from the local store or through the daemon from the remote, and
// otherwise runs rustc, stores what it wrote and hands the entry to the
// daemon. Any error of kache's own runs rustc as if kache were not there.
// docs/wrapper.md and docs/cache-key.md describe it.
package wrapper

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Invocation is a parsed rustc command line that kache can cache.
type Invocation struct {
	Rustc      string   // argv[1] as cargo gave it
	Args       []string // the arguments after it, unchanged
	CrateName  string
	CrateTypes []string
	Source     string // the crate root as given (relative to Cwd, or absolute)
	OutDir     string
	Emit       []string
	ExtraFile  string // -C extra-filename
	Target     string
	Externs    []Extern
	Codegen    []string // -C options, without incremental
	Incr       bool     // -C incremental was given (cached without the directory)
	Cfgs       []string
	Linker     string // -C linker, if given
}

// Extern is one --extern name=path.
type Extern struct{ Name, Path string }

// Uncacheable says why an invocation runs rustc unchanged.
type Uncacheable struct{ Reason string }

func (u *Uncacheable) Error() string { return "not cacheable: " + u.Reason }

func refuse(format string, a ...any) error { return &Uncacheable{fmt.Sprintf(format, a...)} }

// cacheableTypes are the crate types cargo produces whose outputs kache
// knows by name.
var cacheableTypes = []string{"lib", "rlib", "bin", "proc-macro"}

// knownEmits are the emit kinds whose files kache knows by name.
var knownEmits = []string{"dep-info", "metadata", "link"}

// Parse reads rustc's arguments (after the rustc path). Anything kache
// cannot cache exactly is an *Uncacheable with the reason.
func Parse(rustc string, args []string) (*Invocation, error) {
	inv := &Invocation{Rustc: rustc, Args: args}
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, val, hasVal := splitFlag(a)
		if takesValue(flag) && !hasVal {
			if i+1 >= len(args) {
				return nil, refuse("%s without a value", flag)
			}
			i++
			val = args[i]
		}
		if err := inv.take(flag, val, a); err != nil {
			return nil, err
		}
	}
	return inv, inv.check()
}

// splitFlag splits "--flag=value" and "-Cvalue" forms.
func splitFlag(a string) (flag, val string, hasVal bool) {
	if strings.HasPrefix(a, "--") {
		if k, v, ok := strings.Cut(a, "="); ok {
			return k, v, true
		}
		return a, "", false
	}
	if len(a) > 2 && a[0] == '-' && strings.ContainsRune("CLlAWDFo", rune(a[1])) {
		return a[:2], a[2:], true
	}
	return a, "", false
}

func takesValue(flag string) bool {
	switch flag {
	case "--crate-name", "--crate-type", "--edition", "--emit", "--out-dir", "--target", "--extern",
		"--cfg", "--check-cfg", "--error-format", "--json", "--cap-lints", "--codegen", "--print",
		"--remap-path-prefix", "--explain", "--sysroot", "-C", "-L", "-l", "-A", "-W", "-D", "-F", "-o",
		"--force-warn", "--diagnostic-width", "--color":
		return true
	}
	return false
}

func (inv *Invocation) take(flag, val, raw string) error {
	switch flag {
	case "--crate-name":
		inv.CrateName = val
	case "--crate-type":
		inv.CrateTypes = append(inv.CrateTypes, strings.Split(val, ",")...)
	case "--emit":
		inv.Emit = append(inv.Emit, strings.Split(val, ",")...)
	case "--out-dir":
		inv.OutDir = val
	case "--target":
		inv.Target = val
	case "--extern":
		name, path, _ := strings.Cut(val, "=")
		inv.Externs = append(inv.Externs, Extern{name, path})
	case "--cfg":
		inv.Cfgs = append(inv.Cfgs, val)
	case "-C", "--codegen":
		return inv.codegen(val)
	case "-o":
		return refuse("-o names the output file")
	case "--print", "--explain":
		return refuse("%s is a query, not a compile", flag)
	case "-", "-vV", "-V", "--version", "-v":
		return refuse("%s is a probe", raw)
	case "--test", "--crate-type=test":
		inv.CrateTypes = append(inv.CrateTypes, "test")
	case "-Z":
		return refuse("unstable -Z options")
	default:
		return inv.positional(flag, raw)
	}
	return nil
}

func (inv *Invocation) codegen(val string) error {
	k, v, _ := strings.Cut(val, "=")
	switch k {
	case "incremental":
		inv.Incr = true
		return nil
	case "extra-filename":
		inv.ExtraFile = v
	case "linker":
		inv.Linker = v
	case "profile-generate", "profile-use", "split-debuginfo":
		if k != "split-debuginfo" || v != "off" && v != "packed" {
			return refuse("-C %s writes or reads files kache does not track", k)
		}
	}
	inv.Codegen = append(inv.Codegen, val)
	return nil
}

func (inv *Invocation) positional(flag, raw string) error {
	if strings.HasPrefix(raw, "-") {
		if takesValue(flag) || strings.HasPrefix(raw, "--") && strings.Contains(raw, "=") {
			return nil // a flag with its value whose meaning the key captures verbatim
		}
		switch raw {
		case "-g", "-O":
			return nil
		}
		return refuse("unknown flag %s", raw)
	}
	if inv.Source != "" {
		return refuse("two inputs (%s, %s)", inv.Source, raw)
	}
	inv.Source = raw
	return nil
}

func (inv *Invocation) check() error {
	switch {
	case inv.Source == "":
		return refuse("no input file")
	case inv.CrateName == "":
		return refuse("no --crate-name")
	case inv.OutDir == "":
		return refuse("no --out-dir")
	case len(inv.CrateTypes) == 0:
		return refuse("no --crate-type")
	case !slices.Contains(inv.Emit, "dep-info"):
		return refuse("no dep-info emitted (kache needs it to know the sources)")
	}
	for _, t := range inv.CrateTypes {
		if !slices.Contains(cacheableTypes, t) {
			return refuse("crate type %s", t)
		}
	}
	for _, e := range inv.Emit {
		if !slices.Contains(knownEmits, e) {
			return refuse("emit kind %s", e)
		}
	}
	if !filepath.IsAbs(inv.OutDir) {
		return refuse("relative --out-dir")
	}
	return nil
}

// Linked reports whether rustc links an executable or shared object, so
// the linker is an input.
func (inv *Invocation) Linked() bool {
	return slices.Contains(inv.Emit, "link") && slices.ContainsFunc(inv.CrateTypes, func(t string) bool {
		return t == "bin" || t == "proc-macro"
	})
}
