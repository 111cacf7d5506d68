package rpc

import (
	"context"

	"github.com/kunobi-ninja/kache/internal/totals"
)

// OpMetrics asks for the counters and gauges in a Prometheus text format,
// rendered by the daemon: the client links none of the Prometheus
// libraries (their package initialisation would cost every compile).
const OpMetrics Op = "metrics"

// StatsArgs are the optional arguments of OpStats.
type StatsArgs struct {
	// Reset zeroes the lasting totals (the counts of the running daemon
	// are kept); the answer shows them after the reset.
	Reset bool `json:"reset,omitempty"`
}

// Totals are the counters kept on disk across daemon restarts (the file
// <cache>/stats.json), as the stats answer carries them.
type Totals = totals.Totals

// MetricsArgs choose the format of OpMetrics.
type MetricsArgs struct {
	// Format is "openmetrics" (OpenMetrics 1.0 text, the default) or
	// "prometheus" (the classic text format 0.0.4).
	Format string `json:"format,omitempty"`
}

// MetricsResult is the rendered exposition.
type MetricsResult struct {
	ContentType string `json:"content_type"`
	Text        string `json:"text"`
}

// ResetStats zeroes the daemon's lasting totals and returns its stats.
func (c *Client) ResetStats(ctx context.Context) (*Stats, error) {
	resp, err := c.Call(ctx, &Request{Op: OpStats, Stats: &StatsArgs{Reset: true}})
	if err != nil {
		return nil, err
	}
	if resp.Stats == nil {
		return nil, missingField(OpStats, "stats")
	}
	return resp.Stats, nil
}

// Metrics returns the daemon's metrics in format ("" = openmetrics).
func (c *Client) Metrics(ctx context.Context, format string) (*MetricsResult, error) {
	resp, err := c.Call(ctx, &Request{Op: OpMetrics, Metrics: &MetricsArgs{Format: format}})
	if err != nil {
		return nil, err
	}
	if resp.Metrics == nil {
		return nil, missingField(OpMetrics, "metrics")
	}
	return resp.Metrics, nil
}
