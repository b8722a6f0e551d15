package driver

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/machine"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/pybridge"
	"github.com/distrotest/distrotest/cmd/internal/pybridge/pybridgetest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// fixture is a test directory with a prepared-image stand-in (a manifest;
// the fake machines never read the disk), a script and the fake machines
// Run creates.
type fixture struct {
	dir    string
	image  string
	cache  string
	out    string
	stderr pybridgetest.Buffer

	mu       sync.Mutex
	configs  []machine.Config
	machines []*pybridgetest.Machine
	panicOn  string // NewMachine panics for this machine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil && os.Getenv(pybridge.EnvPython) == "" {
		t.Fatalf("python3 is needed: %v", err)
	}
	f := &fixture{dir: t.TempDir()}
	f.image = filepath.Join(f.dir, "image")
	f.cache = filepath.Join(f.dir, "cache")
	f.out = filepath.Join(f.dir, "out")
	if err := os.MkdirAll(f.image, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &manifest.Manifest{Version: manifest.CurrentVersion, Distro: "debian", Release: "13", System: "x86_64-linux",
		Disk: "disk.qcow2", DiskFormat: "qcow2", RootDevice: "/dev/vda1", Filesystem: "ext4", Strategy: "disk"}
	if err := m.Write(f.image); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) config(t *testing.T, script string, machines ...MachineConfig) *Config {
	t.Helper()
	path := filepath.Join(f.dir, "test.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range machines {
		machines[i].Image = f.image
	}
	c := &Config{Version: ConfigVersion, Name: "unit", TestScript: path, Machines: machines}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.setDefaults()
	return c
}

func (f *fixture) options() Options {
	return Options{
		OutDir:   f.out,
		CacheDir: f.cache,
		Stdout:   &f.stderr,
		Stderr:   &f.stderr,
		Host:     &qemu.Host{Binary: "/nonexistent/qemu", Accel: qemu.AccelTCG},
		NewMachine: func(c machine.Config) (Machine, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if c.Name == f.panicOn {
				panic("boom in " + c.Name)
			}
			f.configs = append(f.configs, c)
			m := pybridgetest.New(c.Name, f.dir)
			m.SetConsole(c.Console)
			f.machines = append(f.machines, m)
			return m, nil
		},
	}
}

func (f *fixture) checkCleanedUp(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.machines {
		if !m.Closed() {
			t.Errorf("machine %s was not closed", m.Name())
		}
	}
	for _, c := range f.configs {
		dirs := []string{c.SocketDir}
		if !c.KeepState { // a kept state is meant to stay
			dirs = append(dirs, filepath.Dir(c.StateDir))
		}
		for _, dir := range dirs {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is left behind (%v)", dir, err)
			}
		}
	}
}

func TestRunPass(t *testing.T) {
	f := newFixture(t)
	share := filepath.Join(f.dir, "share")
	if err := os.MkdirAll(share, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, `start_all()
with subtest("both machines"):
    server.succeed("true")
    client.succeed("echo on-the-console >&2")
    vlan1.partition([server], [client])
    vlan1.heal()
    server.block()
    server.unblock()
with subtest("second"):
    machine_names = [m.name for m in machines]
    t.assertEqual(machine_names, ["client", "server"])
`,
		MachineConfig{Name: "server", VLANs: []int{1, 2}, MemorySize: 2048, CPUs: 4, SharedDirs: map[string]SharedDir{"data": {Source: share, Target: "/mnt/data"}}, NixStore: "/nix/store", DiskSize: ptr(4096)},
		MachineConfig{Name: "client", VLANs: []int{1}, DiskGrow: ptr(2048)},
	)
	opt := f.options()
	opt.JUnit = "junit.xml"
	opt.Internet = true
	opt.ExtraQEMUArgs = []string{"-smbios", "type=1,serial=x"}
	if err := Run(context.Background(), cfg, opt); err != nil {
		t.Fatalf("Run: %v\n%s", err, f.stderr.String())
	}
	t.Log(f.stderr.String())
	f.checkCleanedUp(t)

	if len(f.configs) != 2 {
		t.Fatalf("%d machines made, want 2", len(f.configs))
	}
	client, server := f.configs[0], f.configs[1]
	hosts := []guest.Host{{Name: "client", N: 1, VLANs: []int{1}}, {Name: "server", N: 2, VLANs: []int{1, 2}}}
	if diff := cmp.Diff(hosts, server.Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if client.N != 1 || server.N != 2 {
		t.Errorf("numbers: client %d, server %d; want 1, 2 (by name)", client.N, server.N)
	}
	if server.MemoryMiB != 2048 || server.CPUs != 4 || server.DiskSize != (machine.DiskSize{MiB: 4096}) || client.MemoryMiB != DefaultMemoryMiB || client.CPUs != DefaultCPUs {
		t.Errorf("sizes: server %d MiB %d CPUs %d MiB disk, client %d MiB %d CPUs", server.MemoryMiB, server.CPUs, server.DiskSize.MiB, client.MemoryMiB, client.CPUs)
	}
	if client.DiskSize != (machine.DiskSize{MiB: 2048, Grow: true}) {
		t.Errorf("client disk %+v, want 2048 MiB more than the image's", client.DiskSize)
	}
	for _, c := range f.configs {
		if !c.Internet || !slices.Equal(c.ExtraQEMUArgs, opt.ExtraQEMUArgs) {
			t.Errorf("%s: internet %v, extra QEMU args %q; want true, %q", c.Name, c.Internet, c.ExtraQEMUArgs, opt.ExtraQEMUArgs)
		}
	}
	// The test's share, then nixpkgs' /tmp/shared (one host directory for
	// all) and /tmp/xchg (one per machine).
	if len(server.Shares) != 3 || len(client.Shares) != 2 {
		t.Fatalf("shares: server %+v, client %+v", server.Shares, client.Shares)
	}
	if diff := cmp.Diff(machine.Share{Tag: "data", Source: share, Target: "/mnt/data"}, server.Shares[0]); diff != "" {
		t.Errorf("shares (-want +got):\n%s", diff)
	}
	sShared, sXchg, cShared, cXchg := server.Shares[1], server.Shares[2], client.Shares[0], client.Shares[1]
	if sShared.Tag != SharedTag || sShared.Target != "/tmp/shared" || sShared.Source != cShared.Source {
		t.Errorf("/tmp/shared: server %+v, client %+v: want one host directory", sShared, cShared)
	}
	if sXchg.Tag != XchgTag || sXchg.Target != "/tmp/xchg" || sXchg.Source == cXchg.Source || cXchg.Target != "/tmp/xchg" {
		t.Errorf("/tmp/xchg: server %+v, client %+v: want one host directory each", sXchg, cXchg)
	}
	for _, d := range []string{sShared.Source, sXchg.Source, cXchg.Source} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s outlived the run (%v)", d, err)
		}
	}
	if len(server.NICs) != 2 || server.NICs[0].VLAN != 1 || server.NICs[1].VLAN != 2 || server.NICs[0].SwitchSocket == server.NICs[1].SwitchSocket {
		t.Errorf("server NICs: %+v", server.NICs)
	}
	if server.SocketDir != client.SocketDir || len(server.SocketDir) > 40 {
		t.Errorf("socket dirs %q, %q: want one short dir", server.SocketDir, client.SocketDir)
	}
	if server.NixStore != "/nix/store" || server.OutDir != f.out || server.Manifest == nil || server.KeepState || server.Console == nil {
		t.Errorf("server config: %+v", server)
	}
	if !strings.Contains(f.stderr.String(), "client # on-the-console") {
		t.Error("console output is not in the log")
	}

	data, err := os.ReadFile(filepath.Join(f.out, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var j junit.Testsuites
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Suites) != 1 || j.Suites[0].Name != "unit" || j.Suites[0].Tests != 2 || j.Suites[0].Failures != 0 {
		t.Errorf("junit: %s", data)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRunFailure(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, "start_all()\nwith subtest(\"fails\"):\n    machine.succeed(\"exit 42\")\n", MachineConfig{Name: "machine"})
	opt := f.options()
	opt.JUnit = filepath.Join(f.dir, "elsewhere", "j.xml")
	err := Run(context.Background(), cfg, opt)
	var se *pybridge.ScriptError
	if !errors.As(err, &se) || se.Line != 3 {
		t.Fatalf("err = %v, want a failure at line 3", err)
	}
	f.checkCleanedUp(t)
	data, rerr := os.ReadFile(opt.JUnit)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(data), `failures="1"`) || !strings.Contains(string(data), "exit code 42") {
		t.Errorf("junit lacks the failure:\n%s", data)
	}
}

func TestRunSyntaxError(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, "start_all()\n\nmachine.succeed('true'\n", MachineConfig{Name: "machine"})
	opt := f.options()
	opt.JUnit = "junit.xml"
	err := Run(context.Background(), cfg, opt)
	var se *pybridge.ScriptError
	if !errors.As(err, &se) || se.Kind != "syntax" || se.Line != 3 {
		t.Fatalf("err = %v, want a syntax error at line 3", err)
	}
	if len(f.configs) != 0 {
		t.Errorf("%d machines were created before the syntax check", len(f.configs))
	}
	if !strings.Contains(f.stderr.String(), "!!! ") {
		t.Errorf("the log does not show the error:\n%s", f.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(f.out, "junit.xml")); err != nil {
		t.Errorf("no junit report: %v", err)
	}
}

func TestRunGlobalTimeout(t *testing.T) {
	f := newFixture(t)
	pids := filepath.Join(f.dir, "pid")
	cfg := f.config(t, fmt.Sprintf("import os, time\nopen(%q, 'w').write(str(os.getpid()))\nstart_all()\ntime.sleep(100000)\n", pids),
		MachineConfig{Name: "machine"})
	opt := f.options()
	// Long enough for python to start and write its pid on a loaded machine.
	opt.GlobalTimeout = 10 * time.Second
	start := time.Now()
	err := Run(context.Background(), cfg, opt)
	var te *TimeoutError
	if !errors.As(err, &te) || err.Error() != "global timeout of 10s reached" {
		t.Fatalf("err = %v, want the global timeout", err)
	}
	if d := time.Since(start); d > 90*time.Second { // bounded, not timed: the run must end
		t.Errorf("Run took %v", d)
	}
	if !strings.Contains(f.stderr.String(), "global timeout of 10s reached") {
		t.Errorf("the log does not say why the run ended:\n%s", f.stderr.String())
	}
	f.checkCleanedUp(t)
	checkDead(t, pids)
}

func checkDead(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				return // a zombie: dead, waiting for its reaper
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("python (pid %d) is still running", pid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunKeepState(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, "machine.succeed('true')\n", MachineConfig{Name: "machine"})
	opt := f.options()
	opt.KeepState = true
	if err := Run(context.Background(), cfg, opt); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := filepath.Join(f.cache, "state", "unit", "machine")
	if got := f.configs[0].StateDir; got != want || !f.configs[0].KeepState {
		t.Errorf("state dir %q (keep %v), want %q kept", got, f.configs[0].KeepState, want)
	}
	if _, err := os.Stat(filepath.Dir(want)); err != nil {
		t.Errorf("kept state root is gone: %v", err)
	}
	if _, err := os.Stat(f.configs[0].SocketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir left behind: %v", err)
	}
}

// TestRunSnapshotDir checks where machines are restored from: the cache's
// snapshots by default, the directory given, or nowhere with --no-restore
// or the config's no_restore; and that --snapshot-only runs no script.
func TestRunSnapshotDir(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Options, *Config)
		want func(f *fixture) string
	}{
		{"default", func(*Options, *Config) {}, func(f *fixture) string { return filepath.Join(f.cache, "snapshots") }},
		{"given", func(o *Options, _ *Config) { o.SnapshotDir = "/nix/store/x-snapshot" }, func(*fixture) string { return "/nix/store/x-snapshot" }},
		{"no restore", func(o *Options, _ *Config) { o.NoRestore = true }, func(*fixture) string { return "" }},
		{"config no_restore", func(_ *Options, c *Config) { c.NoRestore = true }, func(*fixture) string { return "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config(t, "machine.succeed('true')\n", MachineConfig{Name: "machine"})
			opt := f.options()
			tt.edit(&opt, cfg)
			if err := Run(context.Background(), cfg, opt); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, want := f.configs[0].SnapshotDir, tt.want(f); got != want {
				t.Errorf("SnapshotDir = %q, want %q", got, want)
			}
		})
	}
	t.Run("snapshot only", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.config(t, "raise Exception('the script ran')\n", MachineConfig{Name: "machine"})
		opt := f.options()
		opt.SnapshotOnly = true
		// The fake machines cannot make snapshots: the error says so, and
		// the script does not run.
		err := Run(context.Background(), cfg, opt)
		if err == nil || !strings.Contains(err.Error(), "cannot make snapshots") {
			t.Errorf("Run: %v, want the fake's cannot make snapshots", err)
		}
		opt.NoRestore = true
		if err := Run(context.Background(), cfg, opt); err == nil || !strings.Contains(err.Error(), "restoring is off") {
			t.Errorf("Run with no restore: %v", err)
		}
		f.checkCleanedUp(t)
	})
}

func TestRunPanic(t *testing.T) {
	f := newFixture(t)
	f.panicOn = "zz"
	cfg := f.config(t, "pass\n", MachineConfig{Name: "aa"}, MachineConfig{Name: "zz"})
	opt := f.options()
	opt.JUnit = "junit.xml"
	err := Run(context.Background(), cfg, opt)
	if err == nil || !strings.Contains(err.Error(), "boom in zz") {
		t.Fatalf("err = %v, want the panic", err)
	}
	f.checkCleanedUp(t)
	if _, err := os.Stat(filepath.Join(f.out, "junit.xml")); err != nil {
		t.Errorf("no junit report after a panic: %v", err)
	}
}

func TestRunBadImage(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t, "pass\n", MachineConfig{Name: "machine"})
	cfg.Machines[0].Image = filepath.Join(f.dir, "nope")
	err := Run(context.Background(), cfg, f.options())
	if err == nil || !strings.Contains(err.Error(), "machine machine: image") {
		t.Fatalf("err = %v", err)
	}
}

// TestSIGTERM runs a hanging test in a child process (this test binary,
// see TestMain), sends it SIGTERM and checks that it ends at once, says
// why, and leaves neither Python nor machines behind.
func TestSIGTERM(t *testing.T) {
	f := newFixture(t)
	pidFile := filepath.Join(f.dir, "pid")
	script := filepath.Join(f.dir, "hang.py")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("import os, time\nmachine.start()\nopen(%q, 'w').write(str(os.getpid()))\ntime.sleep(100000)\n", pidFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DRIVER_TEST_CHILD="+f.dir, "DRIVER_TEST_SCRIPT="+script, "DRIVER_TEST_IMAGE="+f.image)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script did not start:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the pid file is complete
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the run did not end after SIGTERM:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{"interrupted", "result: interrupted", "closed: machine"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	checkDead(t, pidFile)
}

// childRun is the child of TestSIGTERM: a run under signal.NotifyContext,
// as in cmd/distrotest.
func childRun(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := &Config{Version: ConfigVersion, Name: "sig", TestScript: os.Getenv("DRIVER_TEST_SCRIPT"),
		Machines: []MachineConfig{{Name: "machine", Image: os.Getenv("DRIVER_TEST_IMAGE")}}}
	cfg.setDefaults()
	var machines []*pybridgetest.Machine
	err := Run(ctx, cfg, Options{
		OutDir:   filepath.Join(dir, "out"),
		CacheDir: filepath.Join(dir, "cache"),
		Host:     &qemu.Host{Binary: "/nonexistent/qemu", Accel: qemu.AccelTCG},
		NewMachine: func(c machine.Config) (Machine, error) {
			m := pybridgetest.New(c.Name, dir)
			machines = append(machines, m)
			return m, nil
		},
	})
	fmt.Printf("result: %v\n", err)
	for _, m := range machines {
		if m.Closed() {
			fmt.Printf("closed: %s\n", m.Name())
		}
	}
	return 0
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("DRIVER_TEST_CHILD"); dir != "" {
		os.Exit(childRun(dir))
	}
	os.Exit(m.Run())
}

func TestAppendShare(t *testing.T) {
	ours := machine.Share{Tag: SharedTag, Source: "/h/shared", Target: SharedTarget}
	tests := []struct {
		name   string
		shares []machine.Share
		want   int
	}{
		{"none", nil, 1},
		{"other share", []machine.Share{{Tag: "data", Target: "/mnt/data"}}, 2},
		{"same tag: the test's wins", []machine.Share{{Tag: SharedTag, Target: "/mnt/x"}}, 1},
		{"same target: the test's wins", []machine.Share{{Tag: "mine", Target: "/tmp/shared/"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, added := appendShare(tt.shares, ours)
			if len(got) != tt.want || added != (tt.want > len(tt.shares)) {
				t.Errorf("got %+v, want %d shares", got, tt.want)
			}
		})
	}
}

// TestRunCreateMachine: create_machine makes a machine from the model's
// image (or a given prepared image) with the next node number, on the
// model's VLANs, not started and not in driver.machines, and the run
// closes it; the start-command form and bad requests fail clearly.
func TestRunCreateMachine(t *testing.T) {
	f := newFixture(t)
	other := filepath.Join(f.dir, "other-image")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &manifest.Manifest{Version: manifest.CurrentVersion, Distro: "debian", Release: "12", System: "x86_64-linux",
		Disk: "disk.qcow2", DiskFormat: "qcow2", RootDevice: "/dev/vda1", Filesystem: "ext4", Strategy: "disk"}
	if err := m.Write(other); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, `import pathlib
from test_driver.errors import MachineError as ME

def must_fail(fn, text):
    try:
        fn()
    except ME as e:
        assert text in str(e), f"{text!r} not in {str(e)!r}"
    else:
        raise Exception(f"no MachineError with {text!r}")

extra = create_machine(name="extra")
assert isinstance(extra, Machine) and extra.name == "extra"
assert not extra.booted
assert isinstance(extra.state_dir, pathlib.Path)
assert [m.name for m in driver.machines] == ["server"]
extra.start()
assert extra.succeed("echo hi") == "hi\n"
assert extra.booted
small = create_machine(name="small", image=os.environ["OTHER_IMAGE"], vlans=[], memory_size=512, cpus=1)
small.succeed("true")
like = create_machine(name="like", image=server)
kept = create_machine(name="kept", keep_machine_state=True)
must_fail(lambda: create_machine("/nix/store/x-run-foo-vm"), "cannot run a start command")
must_fail(lambda: create_machine(name="extra"), 'a machine named "extra" exists already')
must_fail(lambda: create_machine(name="bad name"), "use letters, digits")
must_fail(lambda: create_machine(name="v7", vlans=[7]), "vlan 7 is not in the test's vlans [1]")
must_fail(lambda: create_machine(name="nowhere", image="/nonexistent/image"), "/nonexistent/image")
vlan1.partition([server, extra], [like])
vlan1.heal()
`, MachineConfig{Name: "server", VLANs: []int{1}, MemorySize: 768, CPUs: 3})
	t.Setenv("OTHER_IMAGE", other)
	if err := Run(context.Background(), cfg, f.options()); err != nil {
		t.Fatalf("Run: %v\n%s", err, f.stderr.String())
	}
	f.mu.Lock()
	byName := map[string]machine.Config{}
	for _, c := range f.configs {
		byName[c.Name] = c
	}
	f.mu.Unlock()
	want := []struct {
		name        string
		n           int
		image       string
		mem, cpus   int
		vlans       []int
		hostsListed int
	}{
		{"server", 1, f.image, 768, 3, []int{1}, 1},
		{"extra", 2, f.image, 768, 3, []int{1}, 2},
		{"small", 3, other, 512, 1, nil, 3},
		{"like", 4, f.image, 768, 3, []int{1}, 4},
	}
	for _, w := range want {
		c, ok := byName[w.name]
		if !ok {
			t.Errorf("no machine %s was made", w.name)
			continue
		}
		var vlans []int
		for _, nic := range c.NICs {
			vlans = append(vlans, nic.VLAN)
		}
		if c.N != w.n || c.ImageDir != w.image || c.MemoryMiB != w.mem || c.CPUs != w.cpus || !slices.Equal(vlans, w.vlans) || len(c.Hosts) != w.hostsListed {
			t.Errorf("%s: n %d image %s memory %d cpus %d vlans %v hosts %d; want %+v", w.name, c.N, c.ImageDir, c.MemoryMiB, c.CPUs, vlans, len(c.Hosts), w)
		}
		if own := c.Hosts[len(c.Hosts)-1]; own.Name != w.name || own.N != w.n || !slices.Equal(own.VLANs, w.vlans) {
			t.Errorf("%s: its own host entry is %+v", w.name, own)
		}
	}
	if c := byName["kept"]; !c.KeepState || c.StateDir != filepath.Join(cache.State(f.cache, "unit"), "kept") {
		t.Errorf("keep_machine_state=True: keep %v, state dir %s; want the cache's %s", c.KeepState, c.StateDir, filepath.Join(cache.State(f.cache, "unit"), "kept"))
	}
	if byName["extra"].KeepState {
		t.Error("extra keeps its state without keep_machine_state")
	}
	if _, ok := byName["nowhere"]; ok {
		t.Error("a machine was made for a missing image")
	}
	f.checkCleanedUp(t)
}
