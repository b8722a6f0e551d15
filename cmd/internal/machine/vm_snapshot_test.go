package machine

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// logBuffer is a slog handler target that keeps what it got, for tests
// that look for a log line, and passes it on to the test's log.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestVMRestore restores two machines of one shape from one snapshot (made
// by the first Start) and checks what each must have of its own: host
// name, VLAN addresses and /etc/hosts (they ping each other), a virtiofs
// share and the Nix store mounted after the restore, the host's clock, and
// random state distinct from the other's (boot id, uuidgen, /dev/urandom,
// machine id). Then alpha reboots (a cold boot in a new QEMU, with its
// identity) and beta crashes and starts again (cold); both keep their
// identity and disk. Last, a copy of the snapshot with a corrupted state
// file makes a third machine boot cold, with the reason in the log, and is
// removed.
func TestVMRestore(t *testing.T) {
	vmImage(t)
	virtiofsd := testVirtiofsd(t)
	snapDir := t.TempDir()
	if d := os.Getenv("DISTROTEST_TEST_SNAPSHOT_DIR"); d != "" {
		snapDir = d // kept, for looking into it after a failure
	}
	sw := testSwitch(t)
	store, share := t.TempDir(), t.TempDir()
	writeFiles(t, store, map[string]fileSpec{"aaaa-hello/bin/hello": {data: "#!/bin/sh\necho hello from the store\n", mode: 0o755}})
	writeFiles(t, share, map[string]fileSpec{"one": {data: "1\n", mode: 0o644}})

	hosts := []guest.Host{{Name: "alpha", N: 1, VLANs: []int{1}}, {Name: "beta", N: 2, VLANs: []int{1}}}
	// node n of the test, restored from the snapshots in dir
	node := func(n int, dir string) func(*Config) {
		return func(c *Config) {
			c.N = n
			c.NICs = []NIC{{VLAN: 1, SwitchSocket: sw.Path()}}
			c.Hosts = hosts
			c.SnapshotDir = dir
			c.ShareTransport, c.Virtiofsd = qemu.TransportVirtiofs, virtiofsd
			c.NixStore = store
			c.Shares = []Share{{Tag: "data", Source: share, Target: "/mnt/data"}}
		}
	}
	var ms []*Machine
	for _, h := range hosts {
		m := newVM(t, h.Name, node(h.N, snapDir))
		if err := sw.AddPeer(h.Name, m.NICSocket(1)); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	alpha, beta := ms[0], ms[1]
	ctx := vmContext(t)
	for _, m := range ms {
		start := time.Now()
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if r := m.current(); r == nil || !r.restored {
			t.Fatalf("%s was not restored from the snapshot", m.Name())
		}
		mustExec(t, ctx, m, "true")
		t.Logf("%s: Start to first command %v", m.Name(), time.Since(start).Round(time.Millisecond))
	}
	entries, _ := filepath.Glob(filepath.Join(snapDir, "*", snapshotState))
	if len(entries) != 1 {
		t.Fatalf("snapshot entries with a state file: %v, want one for both machines", entries)
	}

	checkIdentity := func(t *testing.T, m *Machine, n int) {
		t.Helper()
		if got := strings.TrimSpace(mustExec(t, ctx, m, "hostname")); got != m.Name() {
			t.Errorf("host name %q, want %s", got, m.Name())
		}
		if got := mustExec(t, ctx, m, "ip -4 -o addr show"); !strings.Contains(got, "192.168.1."+strconv.Itoa(n)+"/24") {
			t.Errorf("no VLAN address 192.168.1.%d: %s", n, got)
		}
		if got := mustExec(t, ctx, m, "grep -w beta /etc/hosts"); !strings.Contains(got, "192.168.1.2 ") {
			t.Errorf("/etc/hosts lines for beta: %q", got)
		}
		if got := mustExec(t, ctx, m, "cat /mnt/data/one && /nix/store/aaaa-hello/bin/hello && findmnt -no FSTYPE /mnt/data"); got != "1\nhello from the store\nvirtiofs\n" {
			t.Errorf("share and store: %q", got)
		}
	}
	for i, m := range ms {
		t.Run("identity "+m.Name(), func(t *testing.T) { checkIdentity(t, m, i+1) })
	}
	t.Run("ping", func(t *testing.T) {
		ping := "for i in $(seq 60); do ping -n -c1 -W1 192.168.1.2 >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1"
		if status, _, err := alpha.Execute(ctx, ping, 2*time.Minute); err != nil || status != 0 {
			t.Errorf("alpha cannot ping beta: status %d, %v", status, err)
		}
	})
	t.Run("clock", func(t *testing.T) {
		for _, m := range ms {
			before := time.Now()
			out := strings.TrimSpace(mustExec(t, ctx, m, "date +%s.%N"))
			after := time.Now()
			sec, err := strconv.ParseFloat(out, 64)
			if err != nil {
				t.Fatalf("%s: date: %q", m.Name(), out)
			}
			guestTime := time.Unix(0, int64(sec*1e9))
			if guestTime.Before(before.Add(-time.Second)) || guestTime.After(after.Add(time.Second)) {
				t.Errorf("%s: guest clock %v, host %v..%v: more than a second off", m.Name(), guestTime, before, after)
			}
		}
	})
	random := "cat /proc/sys/kernel/random/boot_id; uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; cat /etc/machine-id"
	t.Run("random state", func(t *testing.T) {
		a := strings.Split(mustExec(t, ctx, alpha, random), "\n")
		b := strings.Split(mustExec(t, ctx, beta, random), "\n")
		for i, what := range []string{"boot id", "uuidgen", "/dev/urandom", "machine id"} {
			if i >= len(a) || i >= len(b) || a[i] == "" || a[i] == b[i] {
				t.Errorf("%s: alpha %q, beta %q: want two different values", what, a, b)
			}
		}
		// A guest kernel with a VM generation ID driver bound (an ACPI
		// driver before Linux 6.10, a platform driver since) reseeds its
		// CRNG on the restore by itself, and the restore script relies on
		// it instead of reseeding: the kernel must have said so.
		for _, m := range ms {
			out := mustExec(t, ctx, m, "ls -d /sys/bus/*/drivers/vmgenid/*:* 2>/dev/null || echo 'no vmgenid driver bound'; dmesg | grep -c 'crng reseeded due to virtual machine fork' || true")
			t.Logf("%s: vmgenid in the guest, and reseeds it logged: %q", m.Name(), out)
			if !strings.Contains(out, "no vmgenid driver bound") && strings.HasSuffix(strings.TrimSpace(out), "\n0") {
				t.Errorf("%s: a vmgenid driver is bound but the kernel logged no reseed on the restore: %q", m.Name(), out)
			}
		}
	})

	t.Run("reboot and crash boot cold", func(t *testing.T) {
		bootID := strings.TrimSpace(mustExec(t, ctx, alpha, "cat /proc/sys/kernel/random/boot_id"))
		mustExec(t, ctx, alpha, "echo kept >/root/mark && sync")
		mustExec(t, ctx, beta, "echo kept >/root/mark && sync")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[0] = alpha.Reboot(ctx)
		}()
		go func() {
			defer wg.Done()
			if errs[1] = beta.Crash(ctx); errs[1] == nil {
				errs[1] = beta.Start(ctx)
			}
		}()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", ms[i].Name(), err)
			}
		}
		for i, m := range ms {
			if r := m.current(); r == nil || r.restored {
				t.Errorf("%s: the boot after the restored one was not cold", m.Name())
			}
			checkIdentity(t, m, i+1)
			if got := mustExec(t, ctx, m, "cat /root/mark"); got != "kept\n" {
				t.Errorf("%s: the disk lost what the restored guest wrote: %q", m.Name(), got)
			}
		}
		if got := strings.TrimSpace(mustExec(t, ctx, alpha, "cat /proc/sys/kernel/random/boot_id")); got == bootID {
			t.Errorf("alpha's boot id %s did not change with the reboot", got)
		}
	})

	t.Run("corrupted snapshot boots cold", func(t *testing.T) {
		bad := t.TempDir()
		src := filepath.Dir(entries[0])
		dst := filepath.Join(bad, filepath.Base(src))
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{snapshotMeta, snapshotDisk, snapshotState, snapshotRAM} {
			data, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if f == snapshotRAM {
				for i := len(data) / 2; i < len(data)/2+4096 && i < len(data); i++ {
					data[i] ^= 0xa5
				}
			}
			if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		logs := &logBuffer{t: t}
		m := newVM(t, "gamma", func(c *Config) {
			node(3, bad)(c)
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if r := m.current(); r == nil || r.restored {
			t.Fatal("gamma was restored from a corrupted snapshot")
		}
		if got := strings.TrimSpace(mustExec(t, ctx, m, "hostname")); got != "gamma" {
			t.Errorf("host name after the cold fallback: %q", got)
		}
		if log := logs.String(); !strings.Contains(log, "restoring from the snapshot failed, booting cold") || !strings.Contains(log, "the snapshot could not be loaded") ||
			!strings.Contains(log, "is damaged: checksum") {
			t.Errorf("no clear log line for the corrupted snapshot")
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("the corrupted snapshot %s is still there (%v)", dst, err)
		}
	})
}
