package supervisor

import "github.com/kunobi-ninja/kache/rpc"

// uploading lists the oldest uploads in flight for status.
func (d *Daemon) uploading() []rpc.Upload {
	var out []rpc.Upload
	for _, f := range d.pool.InFlight() {
		out = append(out, rpc.Upload{Key: f.Key, Path: f.Path, Since: f.Since, Sent: f.Sent})
	}
	return out
}
