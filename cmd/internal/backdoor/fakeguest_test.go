package backdoor

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/backdoor/backdoortest"
)

// transport is how the fake guest's shell is wired to the host.
type transport = backdoortest.Transport

const (
	pipes = backdoortest.Pipes
	pty   = backdoortest.PTY
)

var transports = []transport{pipes, pty}

// encoding is the Shell.Encoding for a transport: pipes are 8-bit clean
// and flow-controlled like the virtio port, the pty is a terminal like hvc0.
func encoding(tr transport) Encoding {
	if tr == pty {
		return Base64
	}
	return Raw
}

// fakeGuest is backdoortest's guest, a real bash speaking the real
// protocol, with its serial console in a file.
type fakeGuest struct {
	*backdoortest.Guest
	conn    io.ReadWriteCloser
	tmp     string // the guest's TMPDIR
	console string // the guest's stderr (the serial console)
}

// bootScript is a command that makes the shell boot again: it prints junk
// (a printf format) and the marker, then becomes a fresh shell.
func bootScript(t testing.TB, tr transport, junk string) string {
	t.Helper()
	script, err := backdoortest.Script(tr)
	if err != nil {
		t.Fatal(err)
	}
	return "exec env " + backdoortest.JunkEnv + "=" + Quote(junk) + " bash --norc -c " + Quote(script) + "\n"
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
	bg, err := backdoortest.Start(backdoortest.Options{Transport: tr, TmpDir: g.tmp, Junk: junk, Console: console})
	if err != nil {
		t.Fatal(err)
	}
	g.Guest, g.conn = bg, bg.Conn
	t.Cleanup(func() {
		g.Close()
		if t.Failed() {
			if b, err := os.ReadFile(g.console); err == nil && len(b) > 0 {
				t.Logf("guest console:\n%s", b)
			}
		}
	})
	return g
}

// kill kills the guest's shell (see backdoortest.Guest.Kill).
func (g *fakeGuest) kill() { g.Kill() }

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
