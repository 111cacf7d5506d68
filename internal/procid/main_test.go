package procid

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain runs the tests under goleak, or, started through a symlink as
// `kache daemon run` or `kache-daemon run`, plays a daemon until killed.
func TestMain(m *testing.M) {
	if a := os.Args; len(a) >= 2 && (filepath.Base(a[0]) == DaemonName && a[1] == "run" ||
		filepath.Base(a[0]) == ClientName && len(a) >= 3 && a[1] == "daemon" && a[2] == "run") {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
