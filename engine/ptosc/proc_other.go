//go:build !linux

package ptosc

import "syscall"

// sysProcAttr puts the tool in a process group of its own, so that a stop
// kills the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
