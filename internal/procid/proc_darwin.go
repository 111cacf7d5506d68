//go:build darwin

package procid

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Inspect reads a process's identity from the kernel: uid and start time
// from kern.proc.pid, argv and executable from kern.procargs2 (exact, where
// `ps -o args` joins arguments with spaces). Start time is in microseconds
// since the Unix epoch.
func Inspect(pid int) (ProcInfo, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp.Proc.P_pid != int32(pid) {
		return ProcInfo{Pid: pid}, fmt.Errorf("inspect pid %d: no such process", pid)
	}
	st := kp.Proc.P_starttime
	info := ProcInfo{Pid: pid, UID: int(kp.Eproc.Pcred.P_ruid),
		StartTime: uint64(st.Sec)*1e6 + uint64(st.Usec)}
	exe, args, _, err := procArgs(pid)
	if err != nil {
		return info, fmt.Errorf("inspect pid %d: %w", pid, err)
	}
	info.Exe, info.Args = exe, args
	return info, nil
}

// procArgs decodes kern.procargs2: argc (int32), the executable path, NUL
// padding, then argc arguments and the environment, NUL-separated.
func procArgs(pid int) (exe string, args, env []string, err error) {
	raw, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil || len(raw) < 4 {
		return "", nil, nil, fmt.Errorf("read arguments of pid %d: %v", pid, err)
	}
	argc := int(binary.LittleEndian.Uint32(raw))
	fields := bytes.Split(raw[4:], []byte{0})
	exe = string(fields[0])
	i := 1
	for i < len(fields) && len(fields[i]) == 0 { // padding after exe
		i++
	}
	rest := fields[i:]
	argc = min(argc, len(rest))
	for _, f := range rest[:argc] {
		args = append(args, string(f))
	}
	for _, kv := range rest[argc:] {
		if len(kv) == 0 {
			break
		}
		env = append(env, string(kv))
	}
	return exe, args, env, nil
}

// userPids lists the pids of uid's processes via `ps`, which needs no
// privileges and is always present on macOS.
func userPids(uid int) ([]int, error) {
	out, err := exec.Command("/bin/ps", "-U", strconv.Itoa(uid), "-o", "pid=").Output()
	if err != nil {
		return nil, fmt.Errorf("ps -U %d: %w", uid, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// procEnv returns the environment a process started with. macOS offers no
// portable way to read another process's working directory, so cwd is
// empty and a relative KACHE_CACHE_DIR resolves against ours.
func procEnv(pid int) (env []string, cwd string, err error) {
	_, _, env, err = procArgs(pid)
	return env, "", err
}

// Exited reports whether pid has exited (kill -0 fails).
func Exited(pid int) bool { return unix.Kill(pid, 0) != nil }
