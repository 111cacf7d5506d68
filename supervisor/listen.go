package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/kunobi-ninja/kache/internal/safesocket"
)

// ErrSocketLive means something already answers on the socket. Listen
// refuses to take the path over: removing a live socket would orphan the
// daemon behind it (sccache #340).
var ErrSocketLive = errors.New("socket already answers connections")

// listenFdsStart is SD_LISTEN_FDS_START: the first fd systemd passes.
const listenFdsStart = 3

// Listen returns the daemon's listener. Under socket activation (systemd's
// sd_listen_fds: LISTEN_PID is us and LISTEN_FDS >= 1) it adopts fd 3 and
// reports activated, so the caller leaves the socket file alone on exit: it
// belongs to the service manager. Otherwise the caller MUST hold the run
// lock: Listen removes a stale socket file, which is safe only when no other
// daemon can be binding it at the same moment.
func Listen(socket string) (ln net.Listener, activated bool, err error) {
	if ln, ok, err := activatedListener(); ok || err != nil {
		return ln, ok, err
	}
	if err := removeStale(socket); err != nil {
		return nil, false, err
	}
	// Bind under umask 0177 so the socket is 0600 from its first instant:
	// in a shared sticky directory such as /tmp nobody else can connect in
	// the window between bind and chmod. No other goroutine creates files
	// this early in the daemon's start.
	old := syscall.Umask(0o177)
	ln, err = net.Listen("unix", socket)
	syscall.Umask(old)
	if err != nil {
		return nil, false, fmt.Errorf("bind %s: %w", socket, err)
	}
	// The directory check already keeps others out in the default layout;
	// 0600 covers a shared sticky directory such as /tmp.
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, false, fmt.Errorf("chmod 0600 %s: %w", socket, err)
	}
	return ln, false, nil
}

// activatedListener adopts the first fd passed by the service manager.
// ok is false when the LISTEN_* variables are not meant for this process.
// The variables are unset either way once they are ours, as sd_listen_fds
// does, so children we spawn never adopt an fd they did not inherit.
func activatedListener() (ln net.Listener, ok bool, err error) {
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if pid != os.Getpid() || n < 1 {
		return nil, false, nil
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	syscall.CloseOnExec(listenFdsStart)
	f := os.NewFile(listenFdsStart, "LISTEN_FD_3")
	defer f.Close() // FileListener holds its own dup
	ln, err = net.FileListener(f)
	if err != nil {
		return nil, false, fmt.Errorf("adopt socket-activated fd 3 (LISTEN_FDS=%d): %w; check the ListenStream= of kache.socket", n, err)
	}
	return ln, true, nil
}

// removeStale deletes a socket file nobody answers on. A live socket is
// ErrSocketLive; a path that is not a socket, or a socket another user made
// (squatting a shared directory), is refused before any connect, so the
// daemon never mistakes an impostor for itself.
func removeStale(socket string) error {
	fi, err := os.Lstat(socket)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", socket, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: remove it or set KACHE_SOCKET_PATH elsewhere", socket)
	}
	if uid := safesocket.Owner(fi); uid != os.Getuid() {
		return fmt.Errorf("socket %s belongs to uid %d, not you: set KACHE_SOCKET_PATH to a path you own", socket, uid)
	}
	if safesocket.Alive(socket, 500*time.Millisecond) {
		return fmt.Errorf("%w: %s", ErrSocketLive, socket)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", socket, err)
	}
	return nil
}

// Notify sends one sd_notify datagram ("READY=1", "STOPPING=1",
// "STATUS=...", "EXTEND_TIMEOUT_USEC=...") to the service manager. Without
// NOTIFY_SOCKET it does nothing, so the daemon calls it unconditionally. An
// '@' prefix names an abstract socket; Go's address encoding handles it.
//
// The messages kache sends are the constants below and NotifyMainPID.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %q to %s: %w", state, name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q to %s: %w", state, name, err)
	}
	return nil
}

// The sd_notify messages the daemon sends (sd_notify(3)).
const (
	notifyReady     = "READY=1\nSTATUS=running"
	notifyStopping  = "STOPPING=1\nSTATUS=draining uploads"
	notifyHandedOff = "STATUS=handed over, draining"
)

// notifyMainPID tells the service manager that pid is the service's main
// process now (a successor), with an optional status line.
func notifyMainPID(pid int, status string) error {
	msg := "MAINPID=" + strconv.Itoa(pid)
	if status != "" {
		msg += "\n" + status
	}
	return Notify(msg)
}
