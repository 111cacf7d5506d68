//go:build darwin

package rpc

import "golang.org/x/sys/unix"

// peerUID returns the effective uid of the process at the other end of the
// connected Unix socket fd, as the kernel recorded it (LOCAL_PEERCRED, the
// call behind getpeereid), so the peer cannot forge it.
func peerUID(fd uintptr) (uint32, error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return cred.Uid, nil
}
