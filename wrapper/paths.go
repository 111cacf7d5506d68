package wrapper

import (
	"path/filepath"
	"strings"
)

// Placeholders for the two directories whose absolute paths differ
// between checkouts of one revision: the directory cargo runs rustc in
// (the workspace root for members, the package for registry crates) and
// the target profile directory (target/debug). Keys, stored dep-info files
// and replayed compiler messages carry the placeholders, so two checkouts
// share entries; a restore writes the current directories back.
const (
	cwdMark     = "@@KACHE_CWD@@"
	profileMark = "@@KACHE_PROFILE@@"
)

// normalizer replaces the checkout's directories with placeholders, and
// back.
type normalizer struct {
	cwd, profile string
}

// newNormalizer derives the profile directory from rustc's --out-dir:
// target/debug/deps, target/debug/build/<pkg>-<hash> and
// target/debug/examples all sit under target/debug.
func newNormalizer(cwd, outDir string) normalizer {
	prof := filepath.Clean(outDir)
	switch parent := filepath.Dir(prof); {
	case filepath.Base(parent) == "build":
		prof = filepath.Dir(parent)
	case filepath.Base(prof) == "deps" || filepath.Base(prof) == "examples":
		prof = parent
	}
	return normalizer{cwd: filepath.Clean(cwd), profile: prof}
}

// pairs lists prefix/placeholder pairs, the longer prefix first so that a
// profile directory inside the workspace is matched as the profile.
func (n normalizer) pairs() [][2]string {
	ps := [][2]string{{n.profile, profileMark}, {n.cwd, cwdMark}}
	if len(n.cwd) > len(n.profile) {
		ps[0], ps[1] = ps[1], ps[0]
	}
	return ps
}

// norm replaces the directories in s with their placeholders.
func (n normalizer) norm(s string) string {
	for _, p := range n.pairs() {
		if p[0] != "/" && p[0] != "." {
			s = strings.ReplaceAll(s, p[0], p[1])
		}
	}
	return s
}

// denorm writes the current directories back.
func (n normalizer) denorm(s string) string {
	return strings.NewReplacer(profileMark, n.profile, cwdMark, n.cwd).Replace(s)
}

// abs resolves a path rustc was given relative to its working directory.
func (n normalizer) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(n.cwd, p)
}
