//go:build !linux

package btcdtest

import "syscall"

// sysProcAttr returns nil: the parent-death signal exists only on Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
