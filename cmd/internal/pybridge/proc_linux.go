package pybridge

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts Python in its own process group (so that a terminal's
// Ctrl-C reaches only the runner, which then ends everything) and has the
// kernel kill it if the runner dies. An interactive Python stays in the
// terminal's foreground group: it reads the terminal and takes its Ctrl-C.
func sysProcAttr(interactive bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: !interactive, Pdeathsig: syscall.SIGKILL}
}

// kill ends Python and, unless interactive, everything it started.
func kill(cmd *exec.Cmd, interactive bool) {
	if cmd.Process == nil {
		return
	}
	if !interactive {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = cmd.Process.Kill()
}
