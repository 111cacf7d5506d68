package rpc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
)

// ErrImpostor marks a socket that does not belong to this user: the socket
// file is a symlink or is owned by another user, or the process listening on
// it runs as another user. In a shared sticky directory such as /tmp another
// user can bind the path first; talking to that process would hand it every
// request, so the client refuses before sending anything.
var ErrImpostor = errors.New("the daemon socket is not this user's")

// impostorError names what was wrong with the socket and how to get out of
// a path someone else controls. It unwraps to ErrImpostor.
type impostorError struct {
	socket string
	what   string
}

func (e *impostorError) Error() string {
	return fmt.Sprintf("%v: %s %s; another user owns or serves that path, so nothing was sent: set KACHE_SOCKET_PATH to a path in a directory only you can write (for example $XDG_RUNTIME_DIR/kache.sock or ~/.cache/kache/daemon.sock)",
		ErrImpostor, e.socket, e.what)
}

func (e *impostorError) Unwrap() error { return ErrImpostor }

// connPeerUID returns the uid of nc's peer.
func connPeerUID(nc net.Conn) (uint32, error) {
	var uid uint32
	var uerr error
	if err := withFD(nc, func(fd uintptr) { uid, uerr = peerUID(fd) }); err != nil {
		return 0, err
	}
	return uid, uerr
}

// checkSocketFile refuses a socket path that is a symlink or is owned by
// another user, before anything is dialled. A missing file, or one of ours
// that is not a socket, is left for the dial to report as "not running".
// The check is racy on its own (the file may change before connect), which
// is why checkPeer runs after connecting too; this one gives the clearer
// message and costs one lstat.
func checkSocketFile(socket string, uid uint32) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(socket, &st); err != nil {
		return nil
	}
	switch {
	case st.Mode&syscall.S_IFMT == syscall.S_IFLNK:
		return &impostorError{socket, "is a symlink, where the daemon creates a socket"}
	case st.Uid != uid:
		return &impostorError{socket, fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, uid)}
	}
	return nil
}

// checkPeer refuses a connection whose listening process runs as another
// user. A connection without a file descriptor (only a custom Client.Dial
// returns one) cannot be checked and is let through.
func checkPeer(socket string, nc net.Conn, uid uint32) error {
	peer, err := connPeerUID(nc)
	switch {
	case errors.Is(err, errNoFD):
		return nil
	case err != nil:
		return &impostorError{socket, fmt.Sprintf("does not tell who listens on it (%v)", err)}
	case peer != uid:
		return &impostorError{socket, fmt.Sprintf("is served by a process of uid %d, not by you (uid %d)", peer, uid)}
	}
	return nil
}

// myUID is the uid sockets and peers must have: the effective uid, which
// is what the kernel records for both. It is read once per process, since
// kache never changes its uid and a client process makes one call.
var myUID = sync.OnceValue(func() uint32 { return uint32(os.Geteuid()) })
