package qemu

import "syscall"

// sysProcAttr puts QEMU in a process group of its own (so that killing the
// group takes its helpers too) and has the kernel kill it when the runner
// dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
