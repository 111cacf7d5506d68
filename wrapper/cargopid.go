package wrapper

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// CargoPid is the cargo process this invocation runs under, the build it
// belongs to: the nearest ancestor named cargo within a few generations
// (a build script probing rustc through the wrapper, as autocfg does,
// sits between), else the parent. It reads /proc; elsewhere it is the
// parent.
func CargoPid() int { return cargoAbove(os.Getppid()) }

// BuildPid is the cargo process above this invocation, 0 when none is
// (rustc run through kache by hand or by a test): the build the daemon's
// uploads wait for (docs/lifecycle.md#uploads-wait-for-the-build).
func BuildPid() int {
	if pid := cargoAbove(os.Getppid()); isCargo(pid) {
		return pid
	}
	return 0
}

func isCargo(pid int) bool {
	comm, _, ok := procStat(pid)
	return ok && comm == "cargo"
}

// cargoAbove is ppid or the nearest ancestor of it named cargo.
func cargoAbove(ppid int) int {
	for pid, i := ppid, 0; pid > 1 && i < 4; i++ {
		comm, parent, ok := procStat(pid)
		if !ok {
			break
		}
		if comm == "cargo" {
			return pid
		}
		pid = parent
	}
	return ppid
}

// procStat is a process's command name and parent pid from
// /proc/<pid>/stat ("pid (comm) state ppid ...", comm may hold spaces
// and parentheses).
func procStat(pid int) (string, int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 || j < i {
		return "", 0, false
	}
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	parent, err := strconv.Atoi(f[1])
	return string(b[i+1 : j]), parent, err == nil
}
