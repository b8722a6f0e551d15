package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Process is a running QEMU. It lives in its own process group and gets
// SIGKILL when the runner dies (on Linux), so no QEMU outlives the runner
// even after a crash. Its output (QEMU's warnings and errors, never the
// guest's console) goes to the logger, and the last lines are kept for
// error messages.
type Process struct {
	name string // "qemu", "virtiofsd": for messages
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, valid once done is closed

	mu   sync.Mutex
	tail []string
}

// Start starts binary with args in dir (empty: the current directory). Its
// stdin is /dev/null; stdout and stderr go line by line to log. QEMU
// inherits files as its descriptors 3, 4, … (/proc/self/fd/3 in its
// arguments; FD(0) names it).
//
// The parent-death signal is tied to the OS thread that starts the child;
// Go only ends threads of goroutines that exit while locked to their thread,
// so do not call Start from such a goroutine.
func Start(binary string, args []string, dir string, log *slog.Logger, files ...*os.File) (*Process, error) {
	return start("qemu", binary, args, dir, log, files)
}

// FD is the path under which a process started with files opens the
// i-th of them.
func FD(i int) string { return "/proc/self/fd/" + strconv.Itoa(3+i) }

// StartHelper starts a process QEMU depends on (virtiofsd) as Start starts
// QEMU: own process group, parent-death signal, stdin /dev/null, output to
// log. name labels it in messages.
func StartHelper(name, binary string, args []string, dir string, log *slog.Logger) (*Process, error) {
	return start(name, binary, args, dir, log, nil)
}

func start(name, binary string, args []string, dir string, log *slog.Logger, files []*os.File) (*Process, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.ExtraFiles = files
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pw.Close()
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	output := make(chan struct{})
	go func() {
		defer close(output)
		p.readOutput(pr, log)
	}()
	go func() {
		err := cmd.Wait()
		<-output // all of QEMU's last words are in tail before done closes
		pr.Close()
		p.err = err
		close(p.done)
	}()
	return p, nil
}

func (p *Process) readOutput(r io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		log.Warn(p.name+" says", "line", line)
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 20 {
			p.tail = p.tail[len(p.tail)-20:]
		}
		p.mu.Unlock()
	}
}

// Pid returns the process id (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once QEMU has exited and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether QEMU has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns how QEMU ended (nil for exit status 0); valid after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Status describes how QEMU ended ("exit status 1", "signal: killed"), or
// "running".
func (p *Process) Status() string {
	if !p.Exited() {
		return "running"
	}
	return p.cmd.ProcessState.String()
}

// Output returns QEMU's last lines of output (up to 20), oldest first.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Wait waits for QEMU to exit or ctx to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends SIGKILL to QEMU's process group and waits until it is gone.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	if err := killGroup(p.Pid()); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", p.name, p.Pid(), err)
	}
	<-p.done
	return nil
}

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) error {
	return syscall.Kill(-pgid, syscall.SIGKILL)
}
