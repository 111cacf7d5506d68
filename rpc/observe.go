package rpc

import (
	"context"
	"fmt"
	"time"

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

// Counters are the daemon's counts, as kept across restarts and as
// reported for the running daemon alone (Stats).
type Counters = totals.Counters

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

// OpReceipts asks the daemon to read entries back from the remote, for
// `kache flush`: the proof that an upload was confirmed.
const OpReceipts Op = "receipts"

// MaxReceiptKeys bounds one receipts request.
const MaxReceiptKeys = 1000

// ReceiptsArgs name the keys to read back.
type ReceiptsArgs struct {
	Keys []string `json:"keys"`
}

// Receipt is one entry as the remote has it; Error says why it could not
// be read (not found: the remote does not have it).
type Receipt struct {
	Key    string `json:"key"`
	Remote string `json:"remote,omitempty"`
	Object string `json:"object,omitempty"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256,omitempty"`
	Error  string `json:"error,omitempty"`
}

func receiptsMissing(a *ReceiptsArgs) string {
	if a == nil || len(a.Keys) == 0 {
		return `needs "receipts": {"keys": [...]} with at least one key`
	}
	if len(a.Keys) > MaxReceiptKeys {
		return fmt.Sprintf("at most %d keys per receipts request, got %d", MaxReceiptKeys, len(a.Keys))
	}
	return ""
}

// Receipts reads keys back from the remote through the daemon.
func (c *Client) Receipts(ctx context.Context, keys []string) ([]Receipt, error) {
	resp, err := c.Call(ctx, &Request{Op: OpReceipts, Receipts: &ReceiptsArgs{Keys: keys}})
	if err != nil {
		return nil, err
	}
	return resp.Receipts, nil
}

// Upload is one upload in flight, as status lists it in queue.uploading.
type Upload struct {
	Key   string    `json:"key"`
	Path  string    `json:"path"`
	Since time.Time `json:"since"` // when a worker took it
	Sent  int64     `json:"sent"`  // bytes of the current attempt sent so far
}
