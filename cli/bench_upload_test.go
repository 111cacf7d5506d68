package cli_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/install"
	"github.com/kunobi-ninja/kache/internal/procid"
	"github.com/kunobi-ninja/kache/internal/spool"
	"github.com/kunobi-ninja/kache/internal/testenv"
	"github.com/kunobi-ninja/kache/rpc"
)

// BenchmarkUploadEnqueue measures what `kache upload --key K F` does on the
// build's critical path for one entry, against a real daemon (the built
// binary, spawned with `daemon start`) over its real socket:
// uploader.WriteIntent, then rpc.Client.Upload on a kept connection. It
// reports the median and 99th percentile of the whole call, and the
// medians of its two halves, so a miss of the target (p50 < 100 µs, p99 <
// 1 ms) says which half to blame. In "busy" the daemon uploads every entry
// to a directory remote meanwhile, as during a build; in "idle" its remote
// refuses connections, so once its circuit breaker opens it only queues,
// which isolates the cost of the call itself. KACHE_BENCH_BIN picks the
// binary (make bench passes bin/kache); else the one TestMain built.
func BenchmarkUploadEnqueue(b *testing.B) {
	b.Run("busy", func(b *testing.B) { benchEnqueue(b, startBenchDaemon(b, nil)) })
	b.Run("idle", func(b *testing.B) {
		benchEnqueue(b, startBenchDaemon(b, map[string]string{"KACHE_REMOTE_DIR": "",
			"KACHE_S3_BUCKET": "bench", "KACHE_S3_ENDPOINT": "http://127.0.0.1:9",
			"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}))
	})
}

func benchEnqueue(b *testing.B, d *benchDaemon) {
	src := filepath.Join(d.dir, "artifact.rlib")
	if err := os.WriteFile(src, make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}
	c := &rpc.Client{Socket: d.paths.Socket, Epoch: d.epoch}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil { // dial outside the timed loop
		b.Fatal(err)
	}
	var total, intent, call []time.Duration
	for i := 0; b.Loop(); i++ {
		e := spool.Entry{Key: fmt.Sprintf("bench-%d", i), Path: src}
		t0 := time.Now()
		if err := spool.WriteIntent(d.paths.SpoolDir(), e, d.epoch); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		res, err := c.Upload(ctx, []rpc.UploadEntry{{Key: e.Key, Path: src}})
		t2 := time.Now()
		if err != nil { // Queued may be 0: the spool watcher can take it first
			b.Fatalf("upload %s: queued %v, err %v", e.Key, res, err)
		}
		total, intent, call = append(total, t2.Sub(t0)), append(intent, t1.Sub(t0)), append(call, t2.Sub(t1))
	}
	reportPercentiles(b, total, intent, call)
}

// reportPercentiles reports the whole call's p50 and p99 and the medians
// of its halves, in microseconds.
func reportPercentiles(b *testing.B, total, intent, call []time.Duration) {
	b.StopTimer()
	for _, s := range [][]time.Duration{total, intent, call} {
		slices.Sort(s)
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(pct(total, 50)), "p50-µs")
	b.ReportMetric(us(pct(total, 99)), "p99-µs")
	b.ReportMetric(us(pct(intent, 50)), "intent-p50-µs")
	b.ReportMetric(us(pct(call, 50)), "rpc-p50-µs")
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

// benchDaemon is a daemon started from the real binary for a benchmark.
type benchDaemon struct {
	dir   string
	env   []string
	paths config.Paths
	epoch int64
}

// startBenchDaemon starts `kache daemon start` in a short temp dir with a
// directory remote, or with the settings in over, and stops it (killing it if the stop fails) when the
// benchmark ends. The drain is capped at 2 s: the uploads the benchmark
// leaves behind are not what it measures.
func startBenchDaemon(b *testing.B, over map[string]string) *benchDaemon {
	b.Helper()
	bin := os.Getenv("KACHE_BENCH_BIN")
	if bin == "" {
		bin = kacheBin
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "kb") // short: Unix socket paths are limited
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	vars := map[string]string{"KACHE_CACHE_DIR": filepath.Join(dir, "cache"), "KACHE_SOCKET_PATH": filepath.Join(dir, "d.sock"),
		"KACHE_REMOTE_DIR": filepath.Join(dir, "remote"), "KACHE_CONFIG": filepath.Join(dir, "config.toml"),
		"KACHE_DAEMON_IDLE_TIMEOUT": "0"}
	maps.Copy(vars, over)
	if err := os.WriteFile(vars["KACHE_CONFIG"], []byte("drain_timeout_secs = 2\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	d := &benchDaemon{dir: dir, env: testenv.Environ(vars), epoch: install.Epoch(bin)}
	if d.paths, err = config.ResolvePaths(func(k string) string { return vars[k] }); err != nil {
		b.Fatal(err)
	}
	if out, err := d.kache(bin, "daemon", "start"); err != nil {
		b.Fatalf("kache daemon start: %v\n%s", err, out)
	}
	b.Cleanup(func() { d.stop(b, bin) })
	return d
}

func (d *benchDaemon) kache(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = d.env
	return cmd.CombinedOutput()
}

// stop stops the daemon gracefully, then SIGKILLs any daemon still
// serving the socket, so a failed benchmark leaves no process behind.
func (d *benchDaemon) stop(b *testing.B, bin string) {
	if out, err := d.kache(bin, "daemon", "stop"); err != nil {
		b.Errorf("kache daemon stop: %v\n%s", err, out)
	}
	procs, _ := procid.FindDaemons(d.paths.Socket)
	for _, p := range procs {
		_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	}
}
