package report

import (
	"slices"

	"github.com/kunobi-ninja/kache/internal/buildlog"
)

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

// WhyMiss compares, per crate type (a package's lib and bin share a
// name), crate's last miss with the earlier miss that shares the most
// inputs (several crates share a name: every build script is
// build_script_build).
func WhyMiss(path, crate string) []MissDiff {
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
