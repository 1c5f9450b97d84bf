package btcdtest

import "syscall"

// sysProcAttr puts btcd in its own process group, so that a Ctrl-C meant for
// the test or demo does not reach it before its owner stops it, and asks the
// kernel to SIGKILL it when the process that started it dies, so that a test
// binary killed by a timeout leaves no btcd behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
