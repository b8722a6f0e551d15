package backdoor

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// transport is how the fake guest's shell is wired to the host.
type transport string

const (
	// pipes: two pipes, like a socket whose far end dies with the process.
	pipes transport = "pipes"
	// pty: a pseudo-terminal in raw -echo mode that is the shell's
	// controlling terminal, as /dev/hvc0 is in the real guest.
	pty transport = "pty"
)

var transports = []transport{pipes, pty}

// encoding is the Shell.Encoding for the transport: pipes are 8-bit clean
// and flow-controlled like the virtio port, the pty is a terminal like hvc0.
func (tr transport) encoding() Encoding {
	if tr == pty {
		return Base64
	}
	return Raw
}

// fakeGuest is a real bash speaking the real protocol: a shell prints junk
// and the marker, then execs `bash --norc /dev/stdin`, as the guest's
// backdoor script does with /dev/hvc0.
type fakeGuest struct {
	cmd     *exec.Cmd
	conn    io.ReadWriteCloser
	tmp     string // the guest's TMPDIR
	console string // the guest's stderr (the serial console)
}

// bootScript is what the fake guest runs before it becomes the shell; junk
// is a printf format printed before the marker (\000 for a NUL byte).
func bootScript(tr transport, junk string) string {
	var b strings.Builder
	if tr == pty {
		b.WriteString("stty raw -echo\n")
	}
	if junk != "" {
		fmt.Fprintf(&b, "printf %s\n", Quote(junk))
	}
	fmt.Fprintf(&b, "echo %s\n", Quote(guest.Marker))
	b.WriteString("exec bash --norc /dev/stdin\n")
	return b.String()
}

func startGuest(t testing.TB, tr transport, junk string) *fakeGuest {
	t.Helper()
	dir := t.TempDir()
	g := &fakeGuest{tmp: filepath.Join(dir, "tmp"), console: filepath.Join(dir, "console.log")}
	if err := os.Mkdir(g.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	console, err := os.Create(g.console)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()

	g.cmd = exec.Command("bash", "--norc", "-c", bootScript(tr, junk))
	g.cmd.Env = append(os.Environ(), "TMPDIR="+g.tmp, "LANG=C.UTF-8", "LC_ALL=")
	g.cmd.Stderr = console
	var childEnds []*os.File
	switch tr {
	case pipes:
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		g.cmd.Stdin, g.cmd.Stdout = inR, outW
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		g.conn = &pipeConn{r: outR, w: inW}
		childEnds = []*os.File{inR, outW}
	case pty:
		master, slave, err := openPTY()
		if err != nil {
			t.Fatal(err)
		}
		g.cmd.Stdin, g.cmd.Stdout = slave, slave
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		g.conn = master
		childEnds = []*os.File{slave}
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range childEnds {
		f.Close()
	}
	t.Cleanup(func() {
		g.kill()
		g.killJobs()
		g.conn.Close()
		if t.Failed() {
			if b, err := os.ReadFile(g.console); err == nil && len(b) > 0 {
				t.Logf("guest console:\n%s", b)
			}
		}
	})
	return g
}

// kill kills the guest's whole process group (not the jobs that got their
// own) and reaps the shell.
func (g *fakeGuest) kill() {
	if g.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	_ = g.cmd.Wait()
}

// killJobs kills what the guest's commands left running in their own process
// groups: every process whose environment carries the guest's TMPDIR.
func (g *fakeGuest) killJobs() {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	mark := []byte("\x00TMPDIR=" + g.tmp + "\x00")
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

// write sends raw bytes to the guest shell, bypassing the protocol.
func (g *fakeGuest) write(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(g.conn, s); err != nil {
		t.Fatal(err)
	}
}

// consoleText returns what the guest wrote to its serial console.
func (g *fakeGuest) consoleText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(g.console)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
