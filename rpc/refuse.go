package rpc

import (
	"net"
)

// trusted checks that nc's peer runs as the daemon's own user, and
// otherwise answers one forbidden line and closes it. Only the daemon's user
// may hand it work: another user's requests would make it upload their files
// with this user's credentials, or stop it. The check is one getsockopt.
func (s *Server) trusted(nc net.Conn) bool {
	uid, err := connPeerUID(nc)
	if err == nil && uid == s.uid {
		return true
	}
	s.logRefusal(uid, err)
	c := &conn{s: s, nc: nc}
	if err != nil {
		c.reject(Fail(ErrForbidden, "the daemon could not learn who is connecting (%v) and serves only its own user (uid %d); connect over its Unix socket as that user", err, s.uid))
	} else {
		c.reject(Fail(ErrForbidden, "this daemon serves only uid %d and you are uid %d; run your own daemon on a socket you own (set KACHE_SOCKET_PATH to a path in a private directory)", s.uid, uid))
	}
	return false
}

// logRefusal logs a refused peer once per uid, so a user retrying in a loop
// cannot flood the daemon's log; failures to read credentials share one
// entry.
func (s *Server) logRefusal(uid uint32, err error) {
	key := uid
	if err != nil {
		key = ^uint32(0)
	}
	s.mu.Lock()
	first := !s.refused[key] && len(s.refused) < maxRefusalLog
	if first {
		s.refused[key] = true
	}
	s.mu.Unlock()
	if !first {
		return
	}
	if err != nil {
		s.log.Warn("rpc: refusing connections whose peer credentials cannot be read (logged once)", "err", err)
		return
	}
	s.log.Warn("rpc: refusing connections from another user (logged once per uid)", "uid", uid, "daemon_uid", s.uid)
}
