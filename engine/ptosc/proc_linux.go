package ptosc

import "syscall"

// sysProcAttr puts the tool in a process group of its own (a stop kills
// the group) that dies with the worker: a worker killed mid-copy leaves
// no tool copying behind it, only what the ledger names.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
