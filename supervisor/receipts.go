package supervisor

import (
	"context"
	"sync"
	"time"

	"github.com/kunobi-ninja/kache/rpc"
	"github.com/kunobi-ninja/kache/uploader"
)

// receiptTimeout bounds reading one entry back.
const receiptTimeout = 10 * time.Second

// receiptWorkers is how many entries are read back at once: a remote
// with 15 ms of latency reads 400 entries back in well under a second.
const receiptWorkers = 16

// receipts reads each key back from the remote, for `kache flush`. An
// entry the remote lacks gets its error in its receipt, not a failed
// request: flush reports it as lost.
func (d *Daemon) receipts(ctx context.Context, keys []string) *rpc.Response {
	if d.remote == nil {
		return rpc.Fail(rpc.ErrNoRemote, "%v", uploader.ErrNoRemote)
	}
	out := make([]rpc.Receipt, len(keys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, receiptWorkers)
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = d.receipt(ctx, k)
		})
	}
	wg.Wait()
	return &rpc.Response{OK: true, Receipts: out}
}

func (d *Daemon) receipt(ctx context.Context, key string) rpc.Receipt {
	ctx, cancel := context.WithTimeout(ctx, receiptTimeout)
	defer cancel()
	r, err := uploader.ReadReceipt(ctx, d.remote, key)
	if err != nil {
		return rpc.Receipt{Key: key, Error: err.Error()}
	}
	return rpc.Receipt{Key: key, Remote: r.Remote, Object: r.Object, Bytes: r.Size, SHA256: r.SHA256}
}
