//go:build !linux

package main

import "syscall"

// sysProcAttr puts btcpipe in its own process group, so that Ctrl-C reaches
// only the demo, which then stops btcpipe with SIGTERM.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
