package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/internal/daemonctl"
	"github.com/kunobi-ninja/kache/internal/report"
	"github.com/kunobi-ninja/kache/rpc"
	ucli "github.com/urfave/cli/v2"
)

func statsCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "stats",
		Usage: "show the daemon's transfer counters: since it started, and in total across restarts",
		Description: "Starts the daemon if it is offline (through the crash-loop breaker). The totals live in\n" +
			"<cache>/stats.json, written by the daemon at most once a second and at exit.\n" +
			"--format openmetrics prints the counters and gauges for Prometheus (node_exporter's textfile\n" +
			"collector); docs/observability.md lists the metrics. Exit codes: 0, 3 no daemon could be started.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print as JSON (fields in docs/protocol.md); same as --format json"},
			&ucli.StringFlag{Name: "format", Value: "text", Usage: "`FORMAT`: text, json, openmetrics or prometheus (text format 0.0.4)"},
			&ucli.BoolFlag{Name: "reset", Usage: "zero the totals across restarts (this daemon's own counts stay)"},
		},
		Action: func(c *ucli.Context) error {
			format := c.String("format")
			if c.Bool("json") {
				format = "json"
			}
			switch format {
			case "text", "json", "openmetrics", "prometheus":
			default:
				return usagef("--format %q: want text, json, openmetrics or prometheus", format)
			}
			return runStats(c.Context, env, format, c.Bool("reset"))
		},
	}
}

// statsStarting asks for stats, starting the daemon (through the crash-loop
// breaker) if it is offline: like an upload, stats is a command after
// which the lifecycle document promises a running daemon of this binary.
func statsStarting(ctx context.Context, env *Env, p config.Paths, call func(context.Context, *rpc.Client) error) error {
	w := newWrapper(env, p, env.epoch())
	defer w.Client.Close()
	err := call(ctx, w.Client)
	if !rpc.Offline(err) {
		return err
	}
	fmt.Fprintln(env.Stderr, "kache: daemon offline; starting it")
	if serr := w.StartGuarded(ctx); serr != nil {
		return daemonctl.WithLog(p, fmt.Errorf("%w: %v (and starting it failed: %v)", ErrNotRunning, err, serr))
	}
	return call(ctx, w.Client)
}

func runStats(ctx context.Context, env *Env, format string, reset bool) error {
	p, err := env.paths()
	if err != nil {
		return err
	}
	env.startedBy = "auto:stats"
	if format == "openmetrics" || format == "prometheus" {
		return printMetrics(ctx, env, p, format, reset)
	}
	var st *rpc.Stats
	seen := ""
	err = statsStarting(ctx, env, p, func(ctx context.Context, c *rpc.Client) (err error) {
		if reset {
			st, err = c.ResetStats(ctx)
		} else {
			st, err = c.Stats(ctx)
		}
		seen = c.SeenConfig
		return err
	})
	if err != nil {
		return err
	}
	driftWarning(ctx, env, p, seen)
	builds, gos := report.Builds(p)
	stored := report.Store(p, env.Getenv)
	if format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*rpc.Stats
			Rust  report.BuildStats `json:"rust_builds"`
			Go    report.GoStats    `json:"go_builds"`
			Store report.StoreStats `json:"local_store"`
		}{st, builds, gos, stored})
	}
	printStats(env.Stdout, st)
	printBuildStats(env.Stdout, builds, gos, stored)
	return nil
}

func printMetrics(ctx context.Context, env *Env, p config.Paths, format string, reset bool) error {
	return statsStarting(ctx, env, p, func(ctx context.Context, c *rpc.Client) error {
		if reset {
			if _, err := c.ResetStats(ctx); err != nil {
				return err
			}
		}
		m, err := c.Metrics(ctx, format)
		if err == nil {
			_, err = io.WriteString(env.Stdout, m.Text)
		}
		return err
	})
}

// printStats prints this daemon's counts, then the totals across restarts.
func printStats(w io.Writer, st *rpc.Stats) {
	fmt.Fprintln(w, "since this daemon started:")
	printCounters(w, st.Counters)
	fmt.Fprintf(w, "  queue:     %d queued, %d in flight, %d in spool, %d failed intents (breaker %s)\n", st.Queue.Queued, st.Queue.InFlight, st.Queue.Spool, st.Queue.Failed, st.Queue.Breaker)
	if st.Queue.Paused != "" {
		fmt.Fprintf(w, "  paused:    %s\n", st.Queue.Paused)
	}
	if len(st.Queue.WaitingForBuild) > 0 {
		fmt.Fprintf(w, "  holding:   uploads wait for the running build to end (pid %v)\n", st.Queue.WaitingForBuild)
	}
	if t := st.Totals; t != nil {
		fmt.Fprintf(w, "in total since %s:\n", t.Since.Local().Format(time.DateTime))
		printCounters(w, t.Counters)
		fmt.Fprintf(w, "  daemon ends: %d stop, %d idle, %d epoch_stale, %d forced, %d killed or crashed\n",
			t.Ends["stop"], t.Ends["idle"], t.Ends["epoch_stale"], t.Ends["forced"], t.Ends["killed"])
	}
}

func printCounters(w io.Writer, c report.Counters) {
	fmt.Fprintf(w, "  uploads:   %d completed, %d skipped (already remote), %d failed, %d bytes\n", c.UploadsCompleted, c.UploadsSkipped, c.UploadsFailed, c.BytesUploaded)
	fmt.Fprintf(w, "  downloads: %d (%d bytes); remote checks %d hit, %d miss\n", c.Downloads, c.BytesDownloaded, c.RemoteHits, c.RemoteMisses)
	fmt.Fprintf(w, "  builds:    %d\n", c.Builds)
}
