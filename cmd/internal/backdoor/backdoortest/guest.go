// Package backdoortest is a fake guest for tests of the backdoor's host side
// and of what runs on it (the runner, the Python bridge): a local bash that
// runs the guest side of the backdoor protocol, so that the host code under
// test (backdoor.Shell: the preamble, the framing, checksums, timeouts,
// resynchronisation) runs for real with no VM.
//
// Over Pipes the guest runs the handshake of the real guest script
// (cmd/internal/guest's assets/backdoor, from its marker line to the end:
// print the marker, exec bash), with two pipes in place of the virtio
// serial port the script opens; stderr is the serial console. Over PTY it
// is the NixOS-style backdoor on hvc0: a terminal in raw -echo mode, the
// marker, then bash reading the terminal.
//
// Processes: the shell and everything it starts carry TMPDIR=Options.TmpDir;
// Close kills the shell's process group and then every process with that
// TMPDIR (commands that put themselves in their own process group), so a
// test leaves nothing behind.
package backdoortest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// Transport is how the fake guest's shell is wired to the host.
type Transport string

const (
	// Pipes: two pipes, 8-bit clean and flow-controlled like the virtio
	// port; like a socket whose far end dies with the process.
	Pipes Transport = "pipes"
	// PTY: a pseudo-terminal in raw -echo mode that is the shell's
	// controlling terminal, as /dev/hvc0 is in a NixOS-style guest.
	PTY Transport = "pty"
)

// JunkEnv is the environment variable the boot script prints (as a printf
// format, e.g. `\000` for a NUL byte) before the marker: boot noise.
const JunkEnv = "DISTROTEST_FAKE_JUNK"

// guestScript is where the prepared image's backdoor script is.
const guestScript = "/opt/distrotest/backdoor"

// Handshake returns the end of the real guest's backdoor script: from the
// line that prints guest.Marker to the end (the exec of the shell).
func Handshake() (string, error) {
	for _, f := range guest.NewPlan().Files {
		if f.Path != guestScript {
			continue
		}
		marker := `echo "` + guest.Marker + `"`
		i := bytes.Index(f.Data, []byte(marker))
		if i < 0 {
			return "", fmt.Errorf("%s does not print %s", guestScript, marker)
		}
		return string(f.Data[i:]), nil
	}
	return "", fmt.Errorf("the guest plan has no %s", guestScript)
}

// Script is what the fake guest runs to become the shell: boot noise from
// $DISTROTEST_FAKE_JUNK, then the handshake of tr.
func Script(tr Transport) (string, error) {
	var b strings.Builder
	if tr == PTY {
		b.WriteString("stty raw -echo\n")
	}
	b.WriteString(`[ -z "$` + JunkEnv + `" ] || printf "$` + JunkEnv + `"` + "\n")
	switch tr {
	case Pipes:
		h, err := Handshake()
		if err != nil {
			return "", err
		}
		b.WriteString(h)
	case PTY:
		b.WriteString(`echo "` + guest.Marker + `"` + "\n")
		b.WriteString("exec bash --norc /dev/stdin\n")
	default:
		return "", fmt.Errorf("unknown transport %q", tr)
	}
	return b.String(), nil
}

// Options configure a fake guest.
type Options struct {
	Transport Transport // Pipes when empty
	// TmpDir is the guest's TMPDIR (an existing directory); it marks the
	// guest's processes for Close.
	TmpDir string
	// Dir is the shell's working directory ("" is TmpDir). Commands the
	// backdoor runs start in /tmp (backdoor.CommandEnv) as in a real guest.
	Dir string
	// Env is added to the shell's environment.
	Env []string
	// Junk is printed before the marker (a printf format).
	Junk string
	// Console receives the guest's stderr, the serial console; nil
	// discards it.
	Console io.Writer
}

// Guest is a running fake guest.
type Guest struct {
	// Cmd is the shell's process (bash, after the script's exec).
	Cmd *exec.Cmd
	// Conn is the host end of the shell device: hand it to backdoor.New.
	Conn io.ReadWriteCloser
	// TmpDir is the guest's TMPDIR.
	TmpDir string

	exited chan struct{}
	once   sync.Once
}

// Start starts a fake guest; it prints the marker on Conn when its shell is
// ready.
func Start(opts Options) (*Guest, error) {
	if opts.TmpDir == "" {
		return nil, errors.New("fake guest: no TmpDir")
	}
	tr := opts.Transport
	if tr == "" {
		tr = Pipes
	}
	script, err := Script(tr)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if dir == "" {
		dir = opts.TmpDir
	}
	g := &Guest{TmpDir: opts.TmpDir, exited: make(chan struct{})}
	g.Cmd = exec.Command("bash", "--norc", "-c", script)
	g.Cmd.Dir = dir
	g.Cmd.Env = append(os.Environ(), "TMPDIR="+opts.TmpDir, "LANG=C.UTF-8", "LC_ALL=", JunkEnv+"="+opts.Junk)
	g.Cmd.Env = append(g.Cmd.Env, opts.Env...)
	g.Cmd.Stderr = opts.Console
	// A job left running may hold a Console pipe open: stop copying a
	// moment after the shell is gone.
	g.Cmd.WaitDelay = time.Second
	var childEnds []*os.File
	switch tr {
	case Pipes:
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			return nil, err
		}
		g.Cmd.Stdin, g.Cmd.Stdout = inR, outW
		g.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		g.Conn = &pipeConn{r: outR, w: inW}
		childEnds = []*os.File{inR, outW}
	case PTY:
		master, slave, err := openPTY()
		if err != nil {
			return nil, err
		}
		g.Cmd.Stdin, g.Cmd.Stdout = slave, slave
		g.Cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		g.Conn = master
		childEnds = []*os.File{slave}
	}
	err = g.Cmd.Start()
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		g.Conn.Close()
		return nil, fmt.Errorf("starting the fake guest: %w", err)
	}
	go func() {
		_ = g.Cmd.Wait()
		close(g.exited)
	}()
	return g, nil
}

// Exited is closed when the shell has exited (and was reaped).
func (g *Guest) Exited() <-chan struct{} { return g.exited }

// Kill kills the shell's process group (not the jobs that made their own)
// and waits until the shell is reaped.
func (g *Guest) Kill() {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = syscall.Kill(-g.Cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
}

// KillJobs kills what the guest's commands left running in process groups
// of their own: every process whose environment carries the guest's TMPDIR.
func (g *Guest) KillJobs() {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	mark := []byte("\x00TMPDIR=" + g.TmpDir + "\x00")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(append([]byte{0}, env...), mark) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Close kills the guest and its jobs and closes Conn.
func (g *Guest) Close() error {
	var err error
	g.once.Do(func() {
		g.Kill()
		g.KillJobs()
		err = g.Conn.Close()
	})
	return err
}

type pipeConn struct {
	r, w *os.File
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *pipeConn) Close() error {
	c.w.Close()
	return c.r.Close()
}

// openPTY opens a pseudo-terminal pair; the master stays non-blocking so
// that closing it unblocks a reader. (golang.org/x/sys at the version this
// module pins needs a newer go line, so this uses package syscall.)
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	rc, err := master.SyscallConn()
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		var unlock int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ierr = fmt.Errorf("unlocking the pty: %w", e)
			return
		}
		var pts uint32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&pts))); e != 0 {
			ierr = fmt.Errorf("getting the pty number: %w", e)
			return
		}
		n = int(pts)
	}); err != nil {
		master.Close()
		return nil, nil, err
	}
	if ierr != nil {
		master.Close()
		return nil, nil, ierr
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}
