//go:build !linux

package pybridge

import (
	"os/exec"
	"syscall"
)

func sysProcAttr(interactive bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: !interactive}
}

func kill(cmd *exec.Cmd, interactive bool) {
	if cmd.Process == nil {
		return
	}
	if !interactive {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = cmd.Process.Kill()
}
