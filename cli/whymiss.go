package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/kunobi-ninja/kache/internal/report"
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
			ds := report.WhyMiss(report.BuildsFile(p), c.Args().First())
			if c.Bool("json") {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(ds)
			}
			for _, d := range ds {
				printMiss(env.Stdout, d)
			}
			return nil
		},
	}
}

func printMiss(w io.Writer, d report.MissDiff) {
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
