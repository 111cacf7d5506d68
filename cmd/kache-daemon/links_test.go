package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDaemonLinksNoMetricsLibrary: the daemon writes its metrics itself
// (supervisor/exposition.go); the Prometheus libraries cost an idle daemon
// 0.6 MB of resident memory, beyond the 1.2 × sccache issue 15 allows.
func TestDaemonLinksNoMetricsLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "urfave_cli_no_docs netgo osusergo", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/prometheus/") || strings.HasPrefix(dep, "google.golang.org/protobuf") {
			t.Errorf("kache-daemon links %s", dep)
		}
	}
}
