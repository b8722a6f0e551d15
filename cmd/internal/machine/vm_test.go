package machine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/vlan"
	"github.com/distrotest/distrotest/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// vmImage returns the prepared image the VM tests boot, or skips when VM
// tests are not requested.
func vmImage(t testing.TB) string {
	t.Helper()
	testenv.NeedVM(t)
	dir := os.Getenv("DISTROTEST_TEST_IMAGE")
	if dir == "" {
		t.Fatal("DISTROTEST_VM_TESTS=1 but DISTROTEST_TEST_IMAGE is not set: point it at a prepared image directory " +
			"(distrotest-gen image patch ... -o DIR; for a quick development image: testdata/mkharness.sh DIR)")
	}
	return dir
}

var (
	hostOnce sync.Once
	host     qemu.Host
	hostErr  error
)

func vmHost(t testing.TB, kernel string) qemu.Host {
	t.Helper()
	hostOnce.Do(func() {
		cache, _ := os.UserCacheDir()
		if cache != "" {
			cache = filepath.Join(cache, "distrotest")
		}
		host, hostErr = qemu.Probe(context.Background(), qemu.ProbeConfig{CacheDir: cache, Kernels: []string{kernel}})
	})
	if hostErr != nil {
		t.Fatal(hostErr)
	}
	return host
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newVM creates a machine on the test image and makes sure that nothing of
// it (QEMU, sockets, state) is left after the test.
func newVM(t testing.TB, name string, edit func(*Config)) *Machine {
	t.Helper()
	return newVMOn(t, vmImage(t), name, edit)
}

// newVMOn is newVM on the prepared image dir.
func newVMOn(t testing.TB, dir, name string, edit func(*Config)) *Machine {
	t.Helper()
	m0, err := loadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := Config{
		Name:      name,
		N:         1,
		ImageDir:  dir,
		StateDir:  filepath.Join(t.TempDir(), "state"),
		OutDir:    out,
		MemoryMiB: 1024,
		CPUs:      2,
		Host:      vmHost(t, filepath.Join(dir, m0.Kernel)),
		Logger:    testLogger(t),
	}
	if os.Getenv("DISTROTEST_TEST_SHELL_PORT") == "1" {
		cfg.ShellPort = qemu.ShellPortName
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log := m.ConsoleLog()
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			t.Logf("%s: end of the serial console:\n%s", name, log)
		}
		pids := map[int]string{}
		if r := m.current(); r != nil {
			pids[r.proc.Pid()] = "qemu"
			for _, d := range r.daemons {
				pids[d.Pid()] = "virtiofsd"
			}
		}
		sockDir, stateDir := m.sockDir, m.stateDir
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for pid, what := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("%s (pid %d) still exists after Close: %v", what, pid, err)
			}
		}
		// QEMU's and virtiofsd's command lines name their sockets.
		if out, err := exec.Command("pgrep", "-af", sockDir).Output(); err == nil {
			t.Errorf("processes using %s remain after Close: %s", sockDir, out)
		}
		if holders := memfdHolders(sockDir); len(holders) > 0 {
			t.Errorf("guest memory (memfd) still held after Close by %v", holders)
		}
		for _, d := range []string{sockDir, stateDir} {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s remains after Close (%v)", d, err)
			}
		}
	})
	return m
}

// memfdHolders lists the processes whose command line names dir and that
// hold a memfd (a guest's shared RAM lives in one).
func memfdHolders(dir string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		fds, _ := filepath.Glob(filepath.Join(p, "fd", "*"))
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, "/memfd:") {
				out = append(out, filepath.Base(p)+": "+target)
				break
			}
		}
	}
	return out
}

func vmContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(t *testing.T, ctx context.Context, m *Machine, cmd string) string {
	t.Helper()
	status, out, err := m.Execute(ctx, cmd, 0)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if status != 0 {
		t.Fatalf("%s: status %d, output %q", cmd, status, out)
	}
	return string(out)
}

func TestVMLifecycle(t *testing.T) {
	// A virtiofs share: its daemon is restarted with QEMU after Crash and
	// must survive the guest's reboot.
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "f"), []byte("shared\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newVM(t, "life", func(c *Config) {
		c.ShareTransport = qemu.TransportVirtiofs
		c.Virtiofsd = testVirtiofsd(t)
		c.Shares = []Share{{Tag: "data", Source: share, Target: "/mnt/data"}}
	})
	ctx := vmContext(t)
	shared := func(when string) {
		t.Helper()
		if got := mustExec(t, ctx, m, "cat /mnt/data/f"); got != "shared\n" {
			t.Errorf("%s: share reads %q", when, got)
		}
	}
	start := time.Now()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitForShell(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("boot to shell: %v", time.Since(start).Round(time.Millisecond))
	if !m.IsUp() {
		t.Error("IsUp = false after WaitForShell")
	}

	if got := mustExec(t, ctx, m, "hostname"); strings.TrimSpace(got) != "life" {
		t.Errorf("hostname = %q, want life", got)
	}
	if status, _, err := m.Execute(ctx, "exit 3", 0); err != nil || status != 3 {
		t.Errorf("exit 3: status %d, err %v", status, err)
	}
	if status, _, err := m.Execute(ctx, "sleep 30", time.Second); err != nil || status != 124 {
		t.Errorf("sleep with timeout: status %d, err %v (want 124)", status, err)
	}
	t0 := time.Now()
	mustExec(t, ctx, m, "sleep 100 &")
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("a background job held the command for %v", d)
	}

	mustExec(t, ctx, m, "echo console-marker-42 >&2")
	// stderr reaches the serial console on its own schedule: look at the
	// log as the Python driver's wait_for_console_text does (console_read
	// polls ConsoleLog), for up to a minute.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(m.ConsoleLog(), "console-marker-42") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(m.ConsoleLog(), "console-marker-42") {
		t.Error("ConsoleLog lacks the marker")
	}
	data, err := os.ReadFile(filepath.Join(m.cfg.OutDir, "life", "console.log"))
	if err != nil || !bytes.Contains(data, []byte("console-marker-42")) {
		t.Errorf("console.log lacks the marker (%v)", err)
	}

	// Disk state survives a crash.
	mustExec(t, ctx, m, "echo persisted >/root/state && sync")
	bootID := mustExec(t, ctx, m, "cat /proc/sys/kernel/random/boot_id")
	if err := m.Crash(ctx); err != nil {
		t.Fatal(err)
	}
	if m.IsUp() || m.IsRunning() {
		t.Error("machine still up after Crash")
	}
	start = time.Now()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustExec(t, ctx, m, "cat /root/state"); got != "persisted\n" {
		t.Errorf("after crash: /root/state = %q", got)
	}
	shared("after crash and start")
	t.Logf("restart to shell: %v", time.Since(start).Round(time.Millisecond))
	if id := mustExec(t, ctx, m, "cat /proc/sys/kernel/random/boot_id"); id == bootID {
		t.Error("boot id unchanged after Crash+Start")
	}

	// Reboot keeps QEMU.
	pid := m.current().proc.Pid()
	bootID = mustExec(t, ctx, m, "cat /proc/sys/kernel/random/boot_id")
	start = time.Now()
	if err := m.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reboot to shell: %v", time.Since(start).Round(time.Millisecond))
	if id := mustExec(t, ctx, m, "cat /proc/sys/kernel/random/boot_id"); id == bootID {
		t.Error("boot id unchanged after Reboot")
	}
	if got := m.current().proc.Pid(); got != pid {
		t.Errorf("qemu pid changed across reboot: %d -> %d", pid, got)
	}
	shared("after reboot")

	start = time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("shutdown: %v", time.Since(start).Round(time.Millisecond))
	if m.IsRunning() {
		t.Error("QEMU still runs after Shutdown")
	}
	if err := m.WaitForShutdown(ctx); err != nil {
		t.Error(err)
	}
	// Execute starts a stopped machine, as in nixpkgs.
	if got := mustExec(t, ctx, m, "cat /root/state"); got != "persisted\n" {
		t.Errorf("after shutdown: /root/state = %q", got)
	}
}

// TestVMVirtiofsdEndsWithQEMU: QEMU killed under a running command; its
// virtiofsd must go too (newVM's cleanup checks the processes and memfds).
func TestVMVirtiofsdEndsWithQEMU(t *testing.T) {
	share := t.TempDir()
	// With virtiofs: its daemon must go when QEMU dies (newVM's cleanup
	// checks).
	m := newVM(t, "dies", func(c *Config) {
		c.ShareTransport = qemu.TransportVirtiofs
		c.Virtiofsd = testVirtiofsd(t)
		c.Shares = []Share{{Tag: "data", Source: share, Target: "/mnt/data"}}
	})
	ctx := vmContext(t)
	if err := m.WaitForShell(ctx); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := m.Execute(ctx, "sleep 600", 0)
		errc <- err
	}()
	time.Sleep(time.Second)
	if err := syscall.Kill(m.current().proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "machine dies: qemu exited (signal: killed) while running") {
			t.Errorf("Execute error = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Execute still blocked 30 s after QEMU died")
	}
	if m.IsRunning() {
		t.Error("IsRunning after QEMU died")
	}
	<-m.current().ended
	for _, d := range m.current().daemons {
		if !d.Exited() {
			t.Errorf("virtiofsd (pid %d) still runs after QEMU died", d.Pid())
		}
	}
}

func TestVMDevices(t *testing.T) {
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newVM(t, "dev", func(c *Config) {
		c.Shares = []Share{{Tag: "data", Source: share, Target: "/mnt/data"}}
	})
	ctx := vmContext(t)
	if err := m.WaitForShell(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("share", func(t *testing.T) {
		out := mustExec(t, ctx, m, "for i in $(seq 100); do [ -e /mnt/data/hello ] && break; sleep 0.2; done; cat /mnt/data/hello")
		if out != "from the host\n" {
			t.Errorf("share content = %q", out)
		}
	})

	t.Run("monitor", func(t *testing.T) {
		out, err := m.SendMonitorCommand(ctx, "info version")
		if err != nil || !strings.Contains(out, m.cfg.Host.Version) {
			t.Errorf("info version = %q, %v", out, err)
		}
		var status struct {
			Running bool `json:"running"`
		}
		if err := m.QMP(ctx, "query-status", nil, &status); err != nil || !status.Running {
			t.Errorf("query-status = %+v, %v", status, err)
		}
		if err := m.SendKey(ctx, "no-such-key"); err == nil {
			t.Error("SendKey accepted an unknown key")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "shot.png")
		if err := m.Screenshot(ctx, p); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() < 320 || b.Dy() < 200 {
			t.Errorf("screenshot is %v", b)
		}
	})

	t.Run("keys", func(t *testing.T) {
		count := func() int {
			out := mustExec(t, ctx, m, `awk '/i8042/ && $1 == "1:" {s=0; for (i=2; i<=NF; i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' /proc/interrupts`)
			n, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil {
				t.Fatalf("keyboard interrupts %q: %v", out, err)
			}
			return n
		}
		before := count()
		// one key at a time, as the Python driver's send_chars does
		for _, k := range []string{"a", "B", "1", "\n"} {
			if err := m.SendKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // send_chars' default delay
		}
		if after := count(); after <= before {
			t.Errorf("keyboard interrupts %d -> %d: keys did not arrive", before, after)
		}
	})

	t.Run("console input", func(t *testing.T) {
		mustExec(t, ctx, m, "stty -F /dev/ttyS0 -echo icanon; (head -n1 /dev/ttyS0 >/tmp/console-in) >/dev/null 2>&1 </dev/null & sleep 1")
		if err := m.SendConsole(ctx, "typed-on-serial\n"); err != nil {
			t.Fatal(err)
		}
		out := mustExec(t, ctx, m, "for i in $(seq 50); do [ -s /tmp/console-in ] && break; sleep 0.2; done; cat /tmp/console-in")
		if out != "typed-on-serial\n" {
			t.Errorf("guest read %q from ttyS0", out)
		}
	})

	t.Run("forward port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// Whatever can listen on a port in the guest answers "forwarded".
		mustExec(t, ctx, m, `mkdir -p /tmp/www && echo forwarded >/tmp/www/index.html
if command -v busybox >/dev/null; then busybox httpd -p 8080 -h /tmp/www
elif command -v python3 >/dev/null; then (cd /tmp/www && python3 -m http.server 8080 >/dev/null 2>&1 &)
elif command -v nc >/dev/null; then (while :; do nc -N -l 8080 </tmp/www/index.html || sleep 1; done >/dev/null 2>&1 &)
else echo "no way to listen on a port in the guest" >&2; exit 1; fi`)
		if err := m.ForwardPort(ctx, port, 8080); err != nil {
			t.Fatal(err)
		}
		var body string
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if body, err = httpGet(fmt.Sprintf("127.0.0.1:%d", port)); err == nil && strings.Contains(body, "forwarded") {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("GET through the forwarded port: %q, %v", body, err)
	})

	t.Run("big output", func(t *testing.T) {
		// A virtconsole drops output while the host does not read; the
		// whole reply must arrive anyway.
		const n = 8 << 20
		start := time.Now()
		out := mustExec(t, ctx, m, fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", n))
		if len(out) != n || strings.Count(out, "x") != n {
			msg := ""
			if m.cfg.ShellPort == "" {
				msg = " (the shell is on a virtconsole, hvc0, which drops guest output when the host socket is full: " +
					"put the image's backdoor on the virtio port qemu.ShellPortName and set Config.ShellPort)"
			}
			t.Errorf("got %d bytes of %d%s", len(out), n, msg)
		}
		t.Logf("8 MiB of output: %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("copy", func(t *testing.T) {
		src := t.TempDir()
		tree := filepath.Join(src, "tree")
		big := make([]byte, 1<<20+17)
		_, _ = rand.Read(big)
		writeFiles(t, tree, map[string]fileSpec{
			"a.txt":        {data: "a\n", mode: 0o644},
			"bin/run":      {data: "#!/bin/sh\necho hi\n", mode: 0o755},
			"secret":       {data: "s", mode: 0o600},
			"big.bin":      {data: string(big), mode: 0o640},
			"empty/":       {mode: 0o750},
			"link":         {link: "a.txt"},
			"deep/er/file": {data: "x", mode: 0o444},
		})
		start := time.Now()
		if err := m.CopyFromHost(ctx, tree, "/root/copied"); err != nil {
			t.Fatal(err)
		}
		t.Logf("CopyFromHost of ~1 MiB: %v", time.Since(start).Round(time.Millisecond))
		if got := mustExec(t, ctx, m, "cat /root/copied/bin/run && stat -c %a /root/copied/bin/run /root/copied/secret && readlink /root/copied/link"); got != "#!/bin/sh\necho hi\n755\n600\na.txt\n" {
			t.Errorf("in the guest: %q", got)
		}
		if err := m.CopyFromHost(ctx, filepath.Join(tree, "a.txt"), "/root/single"); err != nil {
			t.Fatal(err)
		}
		if got := mustExec(t, ctx, m, "cat /root/single"); got != "a\n" {
			t.Errorf("single file: %q", got)
		}

		back := t.TempDir()
		start = time.Now()
		if err := m.CopyFromMachine(ctx, "/root/copied", back); err != nil {
			t.Fatal(err)
		}
		t.Logf("CopyFromMachine of ~1 MiB: %v", time.Since(start).Round(time.Millisecond))
		if d := cmp.Diff(snapshot(t, tree), snapshot(t, filepath.Join(back, "copied"))); d != "" {
			t.Errorf("round trip (-sent +received):\n%s", d)
		}
		if err := m.CopyFromMachine(ctx, "/root/single", back); err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(filepath.Join(back, "single")); err != nil || string(data) != "a\n" {
			t.Errorf("single file back: %q, %v", data, err)
		}
	})
}

func httpGet(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		err = nil // a listener that does not close is fine
	}
	return string(b), err
}

// testSwitch is a VLAN 1 switch for the test, closed and removed at its end
// (its sockets in /tmp: a t.TempDir path can be too long for a socket).
func testSwitch(t *testing.T) *vlan.Switch {
	t.Helper()
	swDir, err := os.MkdirTemp("/tmp", "dt-sw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(swDir) })
	sw, err := vlan.NewSwitch(swDir, 1, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

func TestVMVLAN(t *testing.T) {
	vmImage(t)
	sw := testSwitch(t)
	hosts := []guest.Host{{Name: "alpha", N: 1, VLANs: []int{1}}, {Name: "beta", N: 2, VLANs: []int{1}}}
	var ms []*Machine
	for _, h := range hosts {
		m := newVM(t, h.Name, func(c *Config) {
			c.N = h.N
			c.NICs = []NIC{{VLAN: 1, SwitchSocket: sw.Path()}}
			c.Hosts = hosts
			c.CPUs = 1
		})
		if err := sw.AddPeer(h.Name, m.NICSocket(1)); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	ctx := vmContext(t)
	for _, m := range ms {
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	alpha, beta := ms[0], ms[1]
	if err := beta.WaitForShell(ctx); err != nil {
		t.Fatal(err)
	}
	ping := "for i in $(seq 60); do ping -n -c1 -W1 192.168.1.2 >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1"
	if status, _, err := alpha.Execute(ctx, ping, 2*time.Minute); err != nil || status != 0 {
		t.Fatalf("alpha cannot ping beta: status %d, %v", status, err)
	}
	if got := mustExec(t, ctx, alpha, "grep -w beta /etc/hosts"); !strings.Contains(got, "192.168.1.2 ") {
		t.Errorf("/etc/hosts lines for beta: %q", got)
	}
	// The guest sees the cable unplugged and plugged back in. (Whether
	// packets for the VLAN then take another route is the guest's
	// network configuration's business.)
	link := func(want string) {
		t.Helper()
		cmd := `for d in /sys/class/net/*; do [ "$(cat $d/address)" = 52:54:00:12:01:01 ] && n=$d; done
for i in $(seq 50); do [ "$(cat $n/operstate)" = ` + want + ` ] && exit 0; sleep 0.2; done; cat $n/operstate; exit 1`
		if status, out, err := alpha.Execute(ctx, cmd, time.Minute); err != nil || status != 0 {
			t.Errorf("VLAN NIC state is %q, want %s (%v)", out, want, err)
		}
	}
	if err := alpha.SetLinks(ctx, false); err != nil {
		t.Fatal(err)
	}
	link("down")
	if err := alpha.SetLinks(ctx, true); err != nil {
		t.Fatal(err)
	}
	link("up")
	if status, _, err := alpha.Execute(ctx, ping, 2*time.Minute); err != nil || status != 0 {
		t.Errorf("ping after unblock: status %d, %v", status, err)
	}
}
