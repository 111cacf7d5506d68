package wrapper

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"lukechampine.com/blake3"
)

// entryVersion is the format of meta.json.
const entryVersion = 1

// Meta is an entry's meta.json: the files rustc wrote into --out-dir and
// what it printed, so a hit can stand in for the compile.
type Meta struct {
	Version   int        `json:"v"`
	Crate     string     `json:"crate"`
	Key       string     `json:"key"`
	Files     []MetaFile `json:"files"`
	Stdout    string     `json:"stdout"` // normalised
	Stderr    string     `json:"stderr"` // normalised
	CompileMs float64    `json:"compile_ms"`
}

// MetaFile is one output file, stored as files/<Name>.
type MetaFile struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Exec   bool   `json:"exec,omitempty"`
	// Text files (dep-info) are stored normalised and written back with
	// the current directories.
	Text bool `json:"text,omitempty"`
}

// outputs are the names rustc writes into --out-dir for this invocation.
func (inv *Invocation) outputs() []MetaFile {
	stem := inv.CrateName + inv.ExtraFile
	var out []MetaFile
	add := func(name string, exec, text bool) {
		if !slices.ContainsFunc(out, func(f MetaFile) bool { return f.Name == name }) {
			out = append(out, MetaFile{Name: name, Exec: exec, Text: text})
		}
	}
	for _, e := range inv.Emit {
		switch e {
		case "dep-info":
			add(stem+".d", false, true)
		case "metadata":
			add("lib"+stem+".rmeta", false, false)
		case "link":
			for _, t := range inv.CrateTypes {
				switch t {
				case "lib", "rlib":
					add("lib"+stem+".rlib", false, false)
				case "bin":
					add(stem, true, false)
				case "proc-macro":
					add("lib"+stem+".so", true, false)
				}
			}
		}
	}
	return out
}

// save places the outputs (linked or copied) into a new store entry.
func (c *call) save(meta Meta) error {
	tmp, err := c.store.Begin(meta.Key)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once placed
	if err := os.Mkdir(filepath.Join(tmp, "files"), 0o700); err != nil {
		return err
	}
	for i := range meta.Files {
		if err := c.saveFile(tmp, &meta.Files[i]); err != nil {
			return err
		}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o600); err != nil {
		return err
	}
	return c.store.Commit(meta.Key, tmp)
}

func (c *call) saveFile(tmp string, f *MetaFile) error {
	src := filepath.Join(c.inv.OutDir, f.Name)
	dst := filepath.Join(tmp, "files", f.Name)
	if f.Text {
		b, err := readSmall(src, 64<<20)
		if err != nil {
			return err
		}
		b = []byte(c.n.norm(string(b)))
		f.Size, f.Digest = int64(len(b)), digestBytes(b)
		return os.WriteFile(dst, b, 0o600)
	}
	perm := os.FileMode(0o600)
	if f.Exec {
		perm = 0o700
	}
	n, d, err := placeHashed(src, dst, perm, "")
	f.Size, f.Digest = n, d
	return err
}

// restore places an entry's files into --out-dir (linked or copied), each
// to a temp name renamed into place, verifying every digest on the way: a
// corrupt entry is an error (the caller removes it and compiles) and
// leaves no partial output. Files get the current time as mtime, as a
// fresh compile would.
func (c *call) restore(dir string) (*Meta, error) {
	b, err := readSmall(filepath.Join(dir, "meta.json"), 64<<20)
	if err != nil {
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("meta.json: %w", err)
	}
	if m.Version != entryVersion || len(m.Files) == 0 {
		return nil, fmt.Errorf("meta.json: version %d with %d files", m.Version, len(m.Files))
	}
	for _, f := range m.Files {
		if err := c.restoreFile(dir, f); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

func (c *call) restoreFile(dir string, f MetaFile) error {
	if f.Name != filepath.Base(f.Name) || f.Name == "." || f.Name == ".." {
		return fmt.Errorf("entry names %q outside --out-dir", f.Name)
	}
	src := filepath.Join(dir, "files", f.Name)
	dst := filepath.Join(c.inv.OutDir, f.Name)
	perm := os.FileMode(0o644)
	if f.Exec {
		perm = 0o755
	}
	tmp := filepath.Join(c.inv.OutDir, ".kache-tmp-"+f.Name)
	if f.Text {
		b, err := readSmall(src, 64<<20)
		if err != nil {
			return err
		}
		if digestBytes(b) != f.Digest {
			return fmt.Errorf("%s: corrupt (digest differs)", src)
		}
		if err := os.WriteFile(tmp, []byte(c.n.denorm(string(b))), perm); err != nil {
			return err
		}
	} else if _, _, err := placeHashed(src, tmp, perm, f.Digest); err != nil {
		return err
	} else if err := freshen(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

func digestBytes(b []byte) string {
	s := blake3.Sum256(b)
	return hex.EncodeToString(s[:])
}
