// Command chaostable renders the figures the chaos rounds append to their
// report file (one JSON object a line, see cli/chaos_test.go) as the
// markdown table of docs/reliability.md, on stdout. scripts/chaos.sh runs
// it after `make chaos`'s long rounds.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// figures is one scenario's line, as cli/chaos_test.go writes it.
type figures struct {
	Scenario string        `json:"scenario"`
	Test     string        `json:"test"`
	Rounds   int           `json:"rounds"`
	Entries  int           `json:"entries"`
	Lost     int           `json:"lost"`
	Wait     time.Duration `json:"longest_client_wait_ns"`
	Faults   int           `json:"faults"`
	Failed   bool          `json:"failed"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaostable:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: chaostable REPORT.jsonl")
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Println("| scenario | result | rounds | entries | faults injected | lost | longest client wait | how to run it |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---|")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fg figures
		if err := json.Unmarshal(sc.Bytes(), &fg); err != nil {
			return fmt.Errorf("report line %q: %w", sc.Text(), err)
		}
		result := "pass"
		if fg.Failed {
			result = "**FAIL** (see the log)"
		}
		fmt.Printf("| %s | %s | %d | %d | %d | %d | %s | `KACHE_CHAOS=long go test ./cli -run '^%s$'` |\n",
			fg.Scenario, result, fg.Rounds, fg.Entries, fg.Faults, fg.Lost, fg.Wait.Round(time.Millisecond), fg.Test)
	}
	return sc.Err()
}
