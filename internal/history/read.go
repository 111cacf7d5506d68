package history

import (
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"time"

	"github.com/kunobi-ninja/kache/internal/regfile"
)

// Generation is one daemon process's life as the file records it.
type Generation struct {
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"`
	Start   *Record   `json:"start,omitempty"` // nil if rotated away
	States  []Record  `json:"states,omitempty"`
	End     *Record   `json:"end,omitempty"` // nil: still running, or killed
	Running bool      `json:"running"`       // set by Mark: it is the live daemon
}

// maxLine bounds one record; longer lines (not ours) are skipped.
const maxLine = 64 << 10

// Load reads the rotated file and the current one, and returns the
// generations newest first. A missing file is no history, not an error;
// a corrupt line is skipped (a crash can cut the last line short).
func Load(path string) ([]Generation, error) {
	var recs []Record
	for _, p := range []string{path + ".1", path} {
		r, err := readFile(p)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r...)
	}
	gens := group(recs)
	slices.Reverse(gens)
	return gens, nil
}

func readFile(path string) ([]Record, error) {
	f, _, err := regfile.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	err = regfile.Lines(f, maxLine, func(line []byte) {
		var r Record
		if json.Unmarshal(line, &r) == nil && r.Pid != 0 {
			out = append(out, r)
		}
	})
	return out, err
}

type genID struct {
	pid     int
	started int64
}

// group gathers records by generation, in the order generations started.
func group(recs []Record) []Generation {
	var gens []Generation
	idx := map[genID]int{}
	for _, r := range recs {
		id := genID{r.Pid, r.Started.UnixNano()}
		i, ok := idx[id]
		if !ok {
			i = len(gens)
			idx[id] = i
			gens = append(gens, Generation{Pid: r.Pid, Started: r.Started})
		}
		g := &gens[i]
		switch r.Kind {
		case KindStart:
			g.Start = &r
		case KindState:
			g.States = append(g.States, r)
		case KindEnd:
			g.End = &r
		}
	}
	return gens
}

// Mark flags the generation of the live daemon (its pid and start time,
// from the state file or status), so it reads "running", not "killed".
func Mark(gens []Generation, pid int, started time.Time) {
	for i := range gens {
		if gens[i].Pid == pid && gens[i].End == nil && gens[i].Started.Sub(started).Abs() < time.Millisecond {
			gens[i].Running = true
		}
	}
}
