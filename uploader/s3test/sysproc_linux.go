package s3test

import "syscall"

// sysProcAttr kills versitygw if the test binary dies without cleanup (a
// test timeout panics past t.Cleanup), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
