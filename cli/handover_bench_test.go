package cli_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/testenv"
)

// TestHandoverFigures measures an upgrade under the load of
// TestHandoverE2EUnderLoad, with the hand-over and with the old path
// (KACHE_NO_HANDOVER=1: drain, exit, the next upload starts the new
// binary), and prints the figures scripts/bench-handover.sh collects (harness in handover_rig_test.go). It
// runs only with KACHE_BENCH_HANDOVER=1: it is a measurement, not a test.
func TestHandoverFigures(t *testing.T) {
	if os.Getenv("KACHE_BENCH_HANDOVER") != "1" {
		t.Skip("set KACHE_BENCH_HANDOVER=1 (scripts/bench-handover.sh) to measure")
	}
	for _, c := range []struct{ name, env string }{{"handover", ""}, {"old-restart", "KACHE_NO_HANDOVER=1"}} {
		t.Run(c.name, func(t *testing.T) {
			var env []string
			if c.env != "" {
				env = append(env, c.env)
			}
			u := newUpgradeRun(t, env...)
			old := u.daemon()
			u.load()
			testenv.WaitFor(t, 20*time.Second, "uploads in flight", func() bool { st := u.daemon(); return st != nil && st.Queue.InFlight > 0 })
			before := time.Now()
			replaced := u.replace()
			newEpoch := install.Epoch(u.bin)
			testenv.WaitFor(t, 60*time.Second, "a daemon of the new build serving", func() bool {
				st := u.daemon()
				return st != nil && st.Pid != old.Pid && st.Epoch == newEpoch
			})
			serving := time.Since(replaced)
			testenv.WaitFor(t, 60*time.Second, "the old daemon to exit", func() bool { return !pidAlive(old.Pid) })
			gone := time.Now()
			// The load after the upgrade is part of the window measured.
			testenv.WaitFor(t, 60*time.Second, "checks after the old daemon's exit", func() bool {
				n, _, _ := u.window(gone, time.Now())
				return n >= 2*loadClients
			})
			u.finish()
			_, baseMiss, baseLongest := u.window(time.Time{}, before)
			n, misses, longest := u.window(replaced, time.Now())
			fmt.Printf("BENCH handover mode=%s clients=%d checks_in_window=%d misses=%d longest_wait_ms=%d baseline_longest_ms=%d baseline_misses=%d replace_to_serving_ms=%d old_gone_ms=%d\n",
				c.name, loadClients, n, misses, longest.Milliseconds(), baseLongest.Milliseconds(), baseMiss,
				serving.Milliseconds(), gone.Sub(replaced).Milliseconds())
		})
	}
}
