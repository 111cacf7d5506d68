//go:build linux

package procid

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kunobi-ninja/kache/internal/safesocket"
)

// Inspect reads a process's identity from /proc: its executable, argv, real
// uid and start time (stat field 22, in clock ticks after boot).
func Inspect(pid int) (ProcInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	info := ProcInfo{Pid: pid}
	var err error
	if info.Args, err = readNulList(dir + "/cmdline"); err != nil {
		return info, fmt.Errorf("inspect pid %d: %w", pid, err)
	}
	// exe is unreadable for other users' processes; argv still identifies.
	info.Exe, _ = os.Readlink(dir + "/exe")
	if info.UID, err = statusUID(dir + "/status"); err != nil {
		return info, fmt.Errorf("inspect pid %d: %w", pid, err)
	}
	if info.StartTime, err = statStartTime(dir + "/stat"); err != nil {
		return info, fmt.Errorf("inspect pid %d: %w", pid, err)
	}
	return info, nil
}

// readNulList splits a NUL-separated /proc file (cmdline, environ).
func readNulList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSuffix(data, []byte{0})
	if len(data) == 0 {
		return nil, nil
	}
	return strings.Split(string(data), "\x00"), nil
}

// statusUID is the real uid from the "Uid:" line of /proc/<pid>/status.
func statusUID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("%s: no Uid line", path)
}

// statStartTime reads field 22 of /proc/<pid>/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func statStartTime(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: malformed", path)
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3
	if len(f) < 20 {
		return 0, fmt.Errorf("%s: only %d fields", path, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// userPids lists the pids in /proc owned by uid. Ownership of the /proc
// directory is the process's effective uid, a cheap first filter.
func userPids(uid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fi, err := e.Info(); err == nil && safesocket.Owner(fi) == uid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procEnv returns the environment a process started with and its working
// directory (empty if unreadable).
func procEnv(pid int) (env []string, cwd string, err error) {
	dir := "/proc/" + strconv.Itoa(pid)
	if env, err = readNulList(dir + "/environ"); err != nil {
		return nil, "", fmt.Errorf("read environment of pid %d: %w", pid, err)
	}
	cwd, _ = os.Readlink(dir + "/cwd")
	return env, cwd, nil
}

// Exited reports whether pid has exited: no such process, or a zombie
// (exited, not yet reaped by its parent).
func Exited(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return false
	}
	state := data[i+2] // field 3, after ") "
	return state == 'Z' || state == 'X'
}
