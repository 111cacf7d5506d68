package install

import (
	"errors"
	"fmt"
	"path/filepath"
)

// MonitorName is the monitor binary's file name: `kache monitor` execs it,
// so the client links none of the terminal UI.
const MonitorName = "kache-monitor"

// ErrNoMonitor means kache-monitor is not installed beside kache.
var ErrNoMonitor = errors.New("kache-monitor not found")

// MonitorPath is the kache-monitor beside the client at clientExe, looked
// for as DaemonPath looks for kache-daemon.
func MonitorPath(clientExe string) (string, error) {
	first := filepath.Join(filepath.Dir(clientExe), MonitorName)
	if ok, _ := executable(first); ok {
		return first, nil
	}
	if real, err := filepath.EvalSymlinks(clientExe); err == nil {
		if c := filepath.Join(filepath.Dir(real), MonitorName); c != first {
			if ok, _ := executable(c); ok {
				return c, nil
			}
		}
	}
	return "", fmt.Errorf("%w beside %s (looked for %s): install the binaries from one build: `make build` puts them in bin/, `go install ./cmd/...` in $GOBIN", ErrNoMonitor, clientExe, first)
}
