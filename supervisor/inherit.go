package supervisor

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/kunobi-ninja/kache/internal/runlock"
)

// Inherited is what a successor got from the daemon that handed over to
// it: the listening socket and the run lock, already held.
type Inherited struct {
	Listener  net.Listener
	LockFD    uintptr
	Activated bool // the socket belongs to a service manager's socket unit
	From      int  // the predecessor's pid, for the log
}

// TakeInherited reads KACHE_HANDOVER, adopts the listener it names, and
// unsets it so nothing we start sees it. nil, nil: not a successor.
func TakeInherited(getenv func(string) string) (*Inherited, error) {
	v := getenv(HandoverEnv)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(HandoverEnv)
	kv := map[string]string{}
	for _, f := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(f, "=")
		kv[k] = val
	}
	lfd, err1 := strconv.Atoi(kv["listen"])
	lock, err2 := strconv.Atoi(kv["lock"])
	if err1 != nil || err2 != nil || lfd < 3 || lock < 3 {
		return nil, fmt.Errorf("%s=%q: want listen=FD,lock=FD: it is set only by a daemon handing over", HandoverEnv, v)
	}
	syscall.CloseOnExec(lfd)
	syscall.CloseOnExec(lock)
	f := os.NewFile(uintptr(lfd), "handover-listener")
	defer f.Close() // FileListener holds its own dup
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("adopt the listener passed as fd %d: %w", lfd, err)
	}
	from, _ := strconv.Atoi(kv["from"])
	return &Inherited{Listener: ln, LockFD: uintptr(lock), Activated: kv["activated"] == "1", From: from}, nil
}

// inheritedLock adopts the run lock passed by the predecessor.
func (d *Daemon) inheritedLock() (*runlock.Lock, error) {
	return runlock.Inherited(d.o.Inherit.LockFD, d.o.Paths.RunLock())
}
