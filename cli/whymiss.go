package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kunobi-ninja/kache/internal/buildlog"
	ucli "github.com/urfave/cli/v2"
)

func whyMissCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "why-miss",
		Usage:     "name the key inputs that changed between CRATE's last miss and its entry before",
		ArgsUsage: "CRATE",
		Description: "Reads <cache>/builds.jsonl, where the Rust wrapper records each miss with the digests of its key's\n" +
			"inputs (docs/cache-key.md), and compares CRATE's last miss with its closest earlier one.\n" +
			"Exit codes: 0 (also when there is nothing to compare, said on stdout), 2 bad input.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print the comparison as JSON"}},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("why-miss takes one CRATE, got %d arguments", c.NArg())
			}
			p, err := env.paths()
			if err != nil {
				return err
			}
			ds := whyMiss(filepath.Join(p.CacheDir, "builds.jsonl"), c.Args().First())
			if c.Bool("json") {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(ds)
			}
			for _, d := range ds {
				d.print(env.Stdout)
			}
			return nil
		},
	}
}

// MissDiff is why-miss's answer.
type MissDiff struct {
	Crate   string   `json:"crate"`
	Types   string   `json:"crate_types,omitempty"`
	Last    string   `json:"last_key,omitempty"`
	Before  string   `json:"previous_key,omitempty"`
	Changed []string `json:"changed"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Note    string   `json:"note,omitempty"`
}

// whyMiss compares, per crate type (a package's lib and bin share a
// name), crate's last miss with the earlier miss that shares the most
// inputs (several crates share a name: every build script is
// build_script_build).
func whyMiss(path, crate string) []MissDiff {
	byType := map[string][]buildlog.Record{}
	var types []string
	_ = buildlog.Read(path, func(r buildlog.Record) {
		if r.Tool == "rustc" && r.Crate == crate && len(r.Inputs) > 0 {
			if _, ok := byType[r.Types]; !ok {
				types = append(types, r.Types)
			}
			byType[r.Types] = append(byType[r.Types], r)
		}
	})
	if len(types) == 0 {
		return []MissDiff{{Crate: crate, Note: "no miss of " + crate + " is recorded in " + path}}
	}
	var out []MissDiff
	for _, t := range types {
		out = append(out, diffLast(crate, byType[t]))
	}
	return out
}

// diffLast explains the last of misses (one crate type's, oldest first).
func diffLast(crate string, misses []buildlog.Record) MissDiff {
	last := misses[len(misses)-1]
	d := MissDiff{Crate: crate, Types: last.Types}
	d.Last = last.Key
	prev, ok := closest(last, misses[:len(misses)-1])
	if !ok {
		d.Note = "only one entry of " + crate + " (" + last.Types + ") is recorded: nothing to compare with"
		return d
	}
	d.Before = prev.Key
	d.Changed, d.Added, d.Removed = diffInputs(prev.Inputs, last.Inputs)
	if d.Last == d.Before {
		d.Note = "the last two misses had the same key (an entry evicted or corrupt, or a remote miss)"
	}
	return d
}

func closest(last buildlog.Record, earlier []buildlog.Record) (buildlog.Record, bool) {
	best, bestN := buildlog.Record{}, -1
	for _, r := range earlier {
		if r.Types != last.Types {
			continue
		}
		n := 0
		for k, v := range r.Inputs {
			if last.Inputs[k] == v {
				n++
			}
		}
		if n >= bestN {
			best, bestN = r, n
		}
	}
	return best, bestN >= 0
}

func diffInputs(before, after map[string]string) (changed, added, removed []string) {
	for k, v := range after {
		old, ok := before[k]
		switch {
		case !ok:
			added = append(added, k)
		case old != v:
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(changed)
	slices.Sort(added)
	slices.Sort(removed)
	return changed, added, removed
}

func (d MissDiff) print(w io.Writer) {
	if d.Note != "" {
		fmt.Fprintln(w, d.Note)
	}
	if d.Before == "" {
		return
	}
	fmt.Fprintf(w, "%s (%s): last miss %s, compared with %s\n", d.Crate, d.Types, d.Last, d.Before)
	for _, l := range []struct {
		what  string
		names []string
	}{{"changed", d.Changed}, {"new", d.Added}, {"gone", d.Removed}} {
		for _, n := range l.names {
			fmt.Fprintf(w, "  %-8s %s\n", l.what, readableInput(n))
		}
	}
}

// readableInput writes the placeholders of normalised paths as words.
func readableInput(name string) string {
	return strings.NewReplacer("@@KACHE_CWD@@", "<workspace>", "@@KACHE_PROFILE@@", "<target>").Replace(name)
}
