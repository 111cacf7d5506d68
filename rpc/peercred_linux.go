//go:build linux

package rpc

import "golang.org/x/sys/unix"

// peerUID returns the uid of the process at the other end of the connected
// Unix socket fd: for an accepted connection the client, for a dialled one
// the process that called listen. The kernel records it at connect and
// listen time, so the peer cannot forge it (SO_PEERCRED).
func peerUID(fd uintptr) (uint32, error) {
	cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
