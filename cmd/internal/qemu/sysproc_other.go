//go:build !linux

package qemu

import "syscall"

// sysProcAttr puts QEMU in a process group of its own. Only Linux has a
// parent-death signal.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
