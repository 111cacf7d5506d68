//go:build linux

package uploader

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// workerNice is the scheduling priority of an upload worker's thread:
// uploads are background work, and on a machine whose cores a build keeps
// busy, packing and compressing entries must take what the compilers leave
// rather than compete with them (the daemon's request handling keeps its
// normal priority: a remote check is on a build's path).
const workerNice = 10

// yieldToBuilds pins the calling worker goroutine to its thread and lowers
// that thread's priority. The thread ends with the goroutine (a goroutine
// that exits locked takes its thread with it), so no other goroutine ever
// runs at the lowered priority.
func yieldToBuilds() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), workerNice)
}
