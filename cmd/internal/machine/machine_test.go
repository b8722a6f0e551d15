package machine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestKeyFor(t *testing.T) {
	tests := map[string]string{
		"a": "a", "A": "shift-a", "Z": "shift-z", "1": "1", "!": "shift-1", " ": "spc", "\n": "ret",
		"-": "minus", "_": "shift-minus", "/": "slash", "?": "shift-slash", `"`: "shift-apostrophe",
		"ctrl-alt-delete": "ctrl-alt-delete", "alt-f2": "alt-f2", "ret": "ret",
	}
	for in, want := range tests {
		if got := KeyFor(in); got != want {
			t.Errorf("KeyFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsoleBuffer(t *testing.T) {
	c := newConsoleBuffer()
	c.append([]byte("booting\r\nlogin: "))
	c.append([]byte("root\nready\n"))
	if got := c.String(); got != "booting\nlogin: root\nready\n" {
		t.Errorf("log = %q (carriage returns must go)", got)
	}
	c.reset()
	if c.String() != "" {
		t.Error("reset kept the log")
	}
}

func TestDecodePPM(t *testing.T) {
	data := append([]byte("P6\n# qemu\n2 1\n255\n"), 255, 0, 0, 0, 0, 255)
	img, err := decodePPM(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.At(1, 0); got != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("pixel (1,0) = %v", got)
	}
	for _, bad := range []string{"P3\n1 1\n255\n", "P6\n1 1\n65535\n", "P6\n2 2\n255\nabc"} {
		if _, err := decodePPM(strings.NewReader(bad)); err == nil {
			t.Errorf("decodePPM(%q) succeeded", bad)
		}
	}
}

func TestKernelParams(t *testing.T) {
	man := &manifest.Manifest{KernelParams: []string{"root=/dev/vda1", "console=ttyS0"}}
	cfg := Config{
		Name: "client", N: 2, NixStore: "/nix/store",
		Shares:            []Share{{Tag: "data", Source: "/src", Target: "/mnt/data"}},
		NICs:              []NIC{{VLAN: 1}},
		Hosts:             []guest.Host{{Name: "client", N: 2, VLANs: []int{1}}, {Name: "server", N: 1, VLANs: []int{1}}},
		ExtraKernelParams: []string{"systemd.log_level=debug"},
	}
	got, err := kernelParams(cfg, man, cfg.Identity())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"root=/dev/vda1", "console=ttyS0", "systemd.default_timeout_start_sec=600", "systemd.default_device_timeout_sec=600", "no_timer_check", "panic=-1", "distrotest.hostname=client", "distrotest.store=1",
		"distrotest.share=data:/mnt/data", "distrotest.net=1:2", "distrotest.hosts=client:2:1,server:1:1",
		"systemd.log_level=debug"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	vm := Config{Name: "vm", Internet: true, DiskSize: DiskSize{MiB: 2048, Grow: true}}
	got, err = kernelParams(vm, man, vm.Identity())
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"root=/dev/vda1", "console=ttyS0", "systemd.default_timeout_start_sec=600", "systemd.default_device_timeout_sec=600", "no_timer_check", "panic=-1", "distrotest.hostname=vm", "distrotest.internet=1", "distrotest.growfs=1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("internet, grown disk (-want +got):\n%s", d)
	}
	if _, err := kernelParams(Config{Name: "bad name"}, man, Config{Name: "bad name"}.Identity()); err == nil {
		t.Error("a name with a space passed")
	}
	// An SELinux image boots permissive; a machine asking for enforcing
	// gets enforcing=1 after it, which wins.
	sel := &manifest.Manifest{KernelParams: []string{"root=UUID=x", "enforcing=0"}}
	el := Config{Name: "el", SELinuxEnforcing: true}
	got, err = kernelParams(el, sel, el.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"root=UUID=x", "enforcing=0", "systemd.default_timeout_start_sec=600", "systemd.default_device_timeout_sec=600", "no_timer_check", "panic=-1", "distrotest.hostname=el", "enforcing=1"}, got); d != "" {
		t.Errorf("enforcing (-want +got):\n%s", d)
	}
}

func TestOverlayArgs(t *testing.T) {
	got := overlayArgs("/img/disk.qcow2", "qcow2", "/state/disk.qcow2")
	want := []string{"create", "-q", "-f", "qcow2", "-b", "/img/disk.qcow2", "-F", "qcow2", "/state/disk.qcow2"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := overlayArgs("/img/disk.raw", "raw", "/s/d"); got[7] != "raw" {
		t.Errorf("raw overlay: %v", got)
	}
	for _, tt := range []struct {
		size DiskSize
		want string
	}{
		{DiskSize{MiB: 4096}, "4096M"},
		{DiskSize{MiB: 2048, Grow: true}, "+2048M"},
	} {
		got := resizeArgs("/s/d", tt.size)
		want := []string{"resize", "-q", "-f", "qcow2", "/s/d", tt.want}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("resize %+v (-want +got):\n%s", tt.size, d)
		}
	}
}

// TestCreateOverlaySizes creates overlays of a 64 MiB image with qemu-img:
// a total, a relative size, and a total smaller than the image (an error,
// and no file left behind).
func TestCreateOverlaySizes(t *testing.T) {
	imageDir, img := testImage(t)
	base := filepath.Join(imageDir, "disk.qcow2")
	for _, tt := range []struct {
		name    string
		size    DiskSize
		want    int64
		wantErr string
	}{
		{"image size", DiskSize{}, 64 << 20, ""},
		{"total", DiskSize{MiB: 100}, 100 << 20, ""},
		{"relative", DiskSize{MiB: 2048, Grow: true}, (64 + 2048) << 20, ""},
		{"smaller than the image", DiskSize{MiB: 32}, 0, "disk size 32M"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.qcow2")
			err := CreateOverlay(context.Background(), img, base, "qcow2", disk, tt.size)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if _, err := os.Stat(disk + ".tmp"); !os.IsNotExist(err) {
					t.Errorf("temporary overlay left behind: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			backing, size := backingFile(t, img, disk)
			if backing != base || size != tt.want {
				t.Errorf("overlay: backing %s, size %d; want %s, %d", backing, size, base, tt.want)
			}
		})
	}
}

// testImage makes a prepared image directory with a small qcow2 disk.
func testImage(t *testing.T) (dir, img string) {
	t.Helper()
	img, err := exec.LookPath("qemu-img")
	if err != nil {
		testenv.Missing(t, "qemu-img is not installed (install qemu-utils)")
	}
	dir = t.TempDir()
	if out, err := exec.Command(img, "create", "-q", "-f", "qcow2", filepath.Join(dir, "disk.qcow2"), "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	for _, f := range []string{"vmlinuz", "initrd"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("not really"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &manifest.Manifest{Version: 1, Distro: "test", Release: "1", System: "x86_64-linux",
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: "/dev/vda", Filesystem: "ext4", KernelParams: []string{"console=ttyS0"}, Strategy: "disk"}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir, img
}

func backingFile(t *testing.T, img, disk string) (string, int64) {
	t.Helper()
	out, err := exec.Command(img, "info", "--output=json", disk).Output()
	if err != nil {
		t.Fatalf("qemu-img info: %v", err)
	}
	var info struct {
		Backing string `json:"full-backing-filename"`
		Size    int64  `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info.Backing, info.Size
}

func TestNewCreatesStateAndClosesClean(t *testing.T) {
	imageDir, img := testImage(t)
	base := t.TempDir()
	stateDir := filepath.Join(base, "state")
	cfg := Config{
		Name: "server", N: 1, ImageDir: imageDir, StateDir: stateDir, OutDir: filepath.Join(base, "out"),
		DiskSize: DiskSize{MiB: 128},
		Host:     qemu.Host{Binary: "/nonexistent/qemu", Img: img},
		NICs:     []NIC{{VLAN: 3, SwitchSocket: "/sw/vlan3"}},
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(stateDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v, %v", st.Mode(), err)
	}
	backing, size := backingFile(t, img, filepath.Join(stateDir, "disk.qcow2"))
	if backing != filepath.Join(imageDir, "disk.qcow2") || size != 128<<20 {
		t.Errorf("overlay backing %q size %d", backing, size)
	}
	if _, err := os.Stat(filepath.Join(base, "out", "server", "console.log")); err != nil {
		t.Error(err)
	}
	qc := m.QEMUConfig()
	if qc.Kernel != filepath.Join(imageDir, "vmlinuz") || qc.Disk != filepath.Join(stateDir, "disk.qcow2") ||
		len(qc.NICs) != 1 || qc.NICs[0].MAC != "52:54:00:12:03:01" || qc.NICs[0].Socket != m.NICSocket(3) {
		t.Errorf("QEMUConfig = %+v", qc)
	}
	for _, p := range m.socketPaths() {
		if len(p) > maxSocketPath {
			t.Errorf("socket path %s too long", p)
		}
	}
	if m.IsUp() || m.IsRunning() {
		t.Error("a new machine is up")
	}
	for name, call := range map[string]func() error{
		"Screenshot":  func() error { return m.Screenshot(context.Background(), filepath.Join(base, "x.png")) },
		"SendKey":     func() error { return m.SendKey(context.Background(), "a") },
		"SendConsole": func() error { return m.SendConsole(context.Background(), "a") },
		"SetLinks":    func() error { return m.SetLinks(context.Background(), false) },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "machine server is not running") {
			t.Errorf("%s on a stopped machine: %v", name, err)
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a stopped machine: %v", err)
	}
	if err := m.Crash(context.Background()); err != nil {
		t.Errorf("Crash of a stopped machine: %v", err)
	}
	if err := m.WaitForShutdown(context.Background()); err != nil {
		t.Errorf("WaitForShutdown of a stopped machine: %v", err)
	}
	sockDir := m.sockDir
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{stateDir, sockDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s remains after Close", d)
		}
	}
	if err := m.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestNewKeepState(t *testing.T) {
	imageDir, img := testImage(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := Config{Name: "kept", ImageDir: imageDir, StateDir: stateDir, KeepState: true,
		Host: qemu.Host{Binary: "/nonexistent/qemu", Img: img}}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(stateDir, "disk.qcow2")
	marker := time.Unix(1_000_000_000, 0)
	os.Chtimes(disk, marker, marker)
	m.Close()
	m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, err := os.Stat(disk); err != nil || !st.ModTime().Equal(marker) {
		t.Errorf("kept overlay was replaced (%v)", err)
	}
	cfg.KeepState = false
	m2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if st, err := os.Stat(disk); err != nil || st.ModTime().Equal(marker) {
		t.Errorf("overlay not recreated without KeepState (%v)", err)
	}
}

func TestNewErrors(t *testing.T) {
	imageDir, img := testImage(t)
	host := qemu.Host{Binary: "/nonexistent/qemu", Img: img}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no name", cfg: Config{ImageDir: imageDir, Host: host}, want: "empty name"},
		{name: "no probe", cfg: Config{Name: "a", ImageDir: imageDir}, want: "run qemu.Probe"},
		{name: "no image", cfg: Config{Name: "a", ImageDir: t.TempDir(), Host: host}, want: "manifest"},
		{name: "no qemu-img", cfg: Config{Name: "a", ImageDir: imageDir, Host: qemu.Host{Binary: "q"}}, want: "install qemu-utils"},
		{name: "long socket path", cfg: Config{Name: "a", ImageDir: imageDir, Host: host,
			SocketDir: filepath.Join(t.TempDir(), strings.Repeat("x", 100))}, want: "longer than 107 bytes"},
		{name: "bad share", cfg: Config{Name: "a", ImageDir: imageDir, Host: host,
			Shares: []Share{{Tag: "t", Source: "/", Target: "relative"}}}, want: "absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

// TestStartFailure runs a real QEMU that refuses its command line: Start
// must report QEMU's words and leave nothing behind. No guest boots.
func TestStartFailure(t *testing.T) {
	imageDir, img := testImage(t)
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Missing(t, "qemu-system-x86_64 is not installed (install qemu-system-x86)")
	}
	m, err := New(Config{Name: "bad", ImageDir: imageDir, Host: qemu.Host{Binary: bin, Img: img, Accel: qemu.AccelTCG},
		ExtraQEMUArgs: []string{"-no-such-option"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = m.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "qemu exited (exit status 1)") || !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("Start error = %v", err)
	}
	if m.IsRunning() {
		t.Error("IsRunning after a failed start")
	}
	entries, _ := os.ReadDir(m.sockDir)
	if len(entries) != 0 {
		t.Errorf("sockets left after a failed start: %v", entries)
	}
	if _, _, err := m.Execute(ctx, "true", 0); err == nil {
		t.Error("Execute on a machine that cannot start succeeded")
	}
}

func TestKeyValues(t *testing.T) {
	tests := []struct {
		combo   string
		want    string // the QMP send-key "keys" argument
		wantErr bool
	}{
		{"ret", `[{"data":"ret","type":"qcode"}]`, false},
		{"ctrl-alt-delete", `[{"data":"ctrl","type":"qcode"},{"data":"alt","type":"qcode"},{"data":"delete","type":"qcode"}]`, false},
		{KeyFor("A"), `[{"data":"shift","type":"qcode"},{"data":"a","type":"qcode"}]`, false},
		{KeyFor("?"), `[{"data":"shift","type":"qcode"},{"data":"slash","type":"qcode"}]`, false},
		{"0x1c", `[{"data":28,"type":"number"}]`, false},
		{"ctrl-nosuchkey", "", true},
		{"0xzz", "", true},
	}
	for _, tt := range tests {
		keys, err := keyValues(tt.combo)
		if (err != nil) != tt.wantErr {
			t.Errorf("keyValues(%q) error = %v, wantErr %v", tt.combo, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		got, err := json.Marshal(keys)
		if err != nil || string(got) != tt.want {
			t.Errorf("keyValues(%q) = %s, %v; want %s", tt.combo, got, err, tt.want)
		}
	}
	// Every character nixpkgs' send_chars types has a key code.
	for c := range charKeys {
		if _, err := keyValues(KeyFor(c)); err != nil {
			t.Errorf("character %q: %v", c, err)
		}
	}
}

// TestUninstrumentedShellCalls: on an image booted as it is, a call that
// needs the shell fails at once, before QEMU starts, saying why.
func TestUninstrumentedShellCalls(t *testing.T) {
	imageDir, img := testImage(t)
	m0, err := manifest.Load(imageDir)
	if err != nil {
		t.Fatal(err)
	}
	m0.Strategy, m0.Uninstrumented = manifest.StrategyNone, "asked for with --no-instrument"
	base := t.TempDir()
	m, err := New(Config{
		Name: "vm", N: 1, ImageDir: imageDir, Manifest: m0, StateDir: filepath.Join(base, "state"), OutDir: filepath.Join(base, "out"),
		Host: qemu.Host{Binary: "/nonexistent/qemu", Img: img},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Execute":      func() error { _, _, err := m.Execute(ctx, "true", 0); return err },
		"WaitForShell": func() error { return m.WaitForShell(ctx) },
		"Reboot":       func() error { return m.Reboot(ctx) },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "machine vm: the image is not instrumented, so it has no shell (asked for with --no-instrument)") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if m.IsRunning() {
		t.Error("a shell call started the machine")
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of a stopped uninstrumented machine: %v", err)
	}
}

func TestPanickedBooting(t *testing.T) {
	m := &Machine{console: newConsoleBuffer()}
	boot := func(text string) { m.console.append([]byte(text)) }
	if m.panickedBooting() {
		t.Fatal("a boot without a panic is retried")
	}
	boot("[    4.5] Kernel panic - not syncing: Fatal exception in interrupt\n")
	if !m.panickedBooting() {
		t.Fatal("a boot that panicked is not retried")
	}
	boot("[    4.6] Kernel panic - not syncing: again\n")
	if m.panickedBooting() {
		t.Fatal("a retried boot that panicked again is retried again")
	}
	// A boot whose shell came up starts the count afresh.
	m.bootPanics, m.retriedPanic = kernelPanics(m.ConsoleLog()), false
	if m.panickedBooting() {
		t.Fatal("old panics in the log cause a retry")
	}
	boot("Kernel panic - not syncing: later\n")
	if !m.panickedBooting() {
		t.Fatal("a new panic after a good boot is not retried")
	}
}

// TestGuestPanickedErr: a call that pvpanic's GUEST_PANICKED interrupted
// fails with ErrGuestPanicked and the console's panic line.
func TestGuestPanickedErr(t *testing.T) {
	m := &Machine{console: newConsoleBuffer(), cfg: Config{Name: "vm"}}
	m.console.append([]byte("[    1.0] sysrq: Trigger a crash\n[    1.1] Kernel panic - not syncing: sysrq triggered crash\n[    1.2] Kernel Offset: disabled\n"))
	r := &run{panicked: make(chan struct{})}
	if r.hasPanicked() {
		t.Fatal("panicked before the event")
	}
	close(r.panicked)
	err := m.exitedErr(r, `running "x"`)
	want := `machine vm: the guest kernel panicked while running "x" (QEMU's pvpanic device reported it; qemu was stopped): Kernel panic - not syncing: sysrq triggered crash`
	if !errors.Is(err, ErrGuestPanicked) || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if got := panicLine("no panic here\n"); got != "see the console log" {
		t.Errorf("panicLine without a panic = %q", got)
	}
}
