package rpc

import (
	"errors"
	"net"
	"syscall"
)

// errNoFD is returned by withFD for a connection that exposes no file
// descriptor (a test wrapper, say).
var errNoFD = errors.New("connection has no file descriptor")

// fdController is implemented by connections that hand out their fd
// without a syscall.RawConn (the Linux client connection).
type fdController interface{ control(func(fd uintptr)) error }

// withFD runs f on nc's file descriptor.
func withFD(nc net.Conn, f func(fd uintptr)) error {
	switch c := nc.(type) {
	case fdController:
		return c.control(f)
	case syscall.Conn:
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(f)
	}
	return errNoFD
}
