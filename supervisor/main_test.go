package supervisor

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/kunobi-ninja/kache/internal/testenv"
	"go.uber.org/goleak"
)

// TestMain runs the package's tests under goleak, or in a child plays a
// socket-activated daemon.
func TestMain(m *testing.M) {
	testenv.RunAct(testenv.Acts{"activated": func(string) int { return reportActivation() }})
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 never stops its mill goroutine (see OpenLog).
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// reportActivation runs in a child given fd 3 and LISTEN_*: it calls
// Listen and answers the first connection with what it saw.
func reportActivation() int {
	ln, activated, err := Listen("/nonexistent/kache-not-used.sock")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return 1
	}
	defer c.Close()
	_, isUnix := ln.(*net.UnixListener)
	fmt.Fprintf(c, "activated=%v unix=%v listen_pid=%q listen_fds=%q\n",
		activated, isUnix, os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"))
	return 0
}
