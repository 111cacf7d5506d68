//go:build !linux

package rpc

import (
	"context"
	"net"
)

// dialUnix connects through the net package: the blocking fast path is
// Linux-only.
func dialUnix(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", socket)
}
