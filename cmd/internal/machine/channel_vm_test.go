package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
)

// channelStats counts what the fault suite checked, for its closing line.
type channelStats struct {
	cases, bytes, lost atomic.Int64
}

// exact runs cmd and checks that its output is want, byte for byte.
func (st *channelStats) exact(t *testing.T, ctx context.Context, m *Machine, name, cmd string, want []byte) {
	t.Helper()
	st.cases.Add(1)
	status, out, err := m.Execute(ctx, cmd, 0)
	if err != nil || status != 0 {
		t.Errorf("%s: %s: status %d, %v", m.Name(), name, status, err)
		st.lost.Add(1)
		return
	}
	st.bytes.Add(int64(len(out)))
	if !bytes.Equal(out, want) {
		st.lost.Add(1)
		i := 0
		for i < len(out) && i < len(want) && out[i] == want[i] {
			i++
		}
		t.Errorf("%s: %s: got %d bytes, want %d; first difference at byte %d", m.Name(), name, len(out), len(want), i)
	}
}

// binPattern is 11 bytes with a NUL, bytes that are never UTF-8 (0xff,
// 0xfe, 0xc0), a truncated sequence and an encoded surrogate.
const binPattern = "\x00\xff\xfe\xc3\x28\xed\xa0\x80abc"

// binCommand prints binPattern n times, with the printf builtin only (it
// reuses its format for every argument; %.0s prints none of them).
func binCommand(n int) (string, []byte) {
	cmd := fmt.Sprintf(`printf '\000\377\376\303\050\355\240\200abc%%.0s' {1..%d}`, n)
	return cmd, bytes.Repeat([]byte(binPattern), n)
}

// xs prints n bytes "x".
func xs(n int) (string, []byte) {
	return fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x`, n), bytes.Repeat([]byte("x"), n)
}

// outputCases are the byte-exact output cases.
func outputCases() []struct {
	name, cmd string
	want      []byte
} {
	type c = struct {
		name, cmd string
		want      []byte
	}
	var out []c
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20} {
		cmd, want := xs(n)
		out = append(out, c{fmt.Sprintf("%d bytes", n), cmd, want})
	}
	small, smallWant := binCommand(1)
	big, bigWant := binCommand(1 << 17)
	out = append(out, c{"binary, 11 bytes", small, smallWant}, c{"binary, 1.4 MiB", big, bigWant})
	return out
}

// TestVMChannelFaults is the backdoor channel's fault suite. Four machines
// boot at once; the first runs the output and misbehaving-command cases
// alone, then all four produce output at the same time, then three of them
// end in a kernel panic, QEMU killed, and a reboot, each in the middle of a
// command. Every case ends with the exact output or a clear error.
func TestVMChannelFaults(t *testing.T) {
	vmImage(t)
	names := []string{"ch1", "ch2", "ch3", "ch4"}
	ms := make([]*Machine, len(names))
	for i, name := range names {
		ms[i] = newVM(t, name, func(c *Config) {
			c.N = i + 1
			if i > 0 {
				c.MemoryMiB = 768
			}
		})
	}
	// Four boots and two reboots on a loaded 2-core machine under TCG take
	// long; each case below has its own bound too.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.WaitForShell(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("4 machines booted to their shells in %v", time.Since(start).Round(time.Millisecond))
	m := ms[0]
	var st channelStats

	t.Run("outputs", func(t *testing.T) {
		for _, c := range outputCases() {
			st.exact(t, ctx, m, c.name, c.cmd, c.want)
		}
		cmd, want := xs(64 << 20)
		st.exact(t, ctx, m, "64 MiB", cmd, want)
	})

	t.Run("misbehaving commands", func(t *testing.T) {
		cases := []struct {
			name, cmd string
			want      string
		}{
			{"execs another program in its place", "echo before; exec printf 'replaced\\n'", "before\nreplaced\n"},
			{"changes the tty settings", "stty -F /dev/ttyS0 -opost -onlcr raw 2>/dev/null || true; for d in /dev/vport*; do stty -F $d raw 2>/dev/null || true; done; echo ok", "ok\n"},
			{"reads stdin", "cat; read -r x || echo eof", "eof\n"},
			{"closes stdout and keeps running", "echo before; exec >&-; sleep 2; echo after >&2", "before\n"},
			{"leaves a process holding stdout", "(sleep 600; echo late) & echo started", "started\n"},
		}
		for _, c := range cases {
			st.exact(t, ctx, m, c.name, c.cmd, []byte(c.want))
			st.exact(t, ctx, m, c.name+": next command", "echo next", []byte("next\n"))
		}
		mustExec(t, ctx, m, "pkill -f 'sleep 600' || true")

		// Prints for longer than its timeout: killed, with what it
		// printed until then (whole lines of "tick").
		st.cases.Add(1)
		status, out, err := m.Execute(ctx, "while :; do echo tick; sleep 0.1; done", 3*time.Second)
		if err != nil || status != backdoor.TimeoutStatus || len(out) == 0 || strings.Trim(string(out), "tick\n") != "" {
			t.Errorf("printing past its timeout: status %d, %d bytes %q, %v", status, len(out), firstBytes(out), err)
		}
		st.bytes.Add(int64(len(out)))

		// Kills the backdoor shell: the call fails, systemd starts a new
		// shell, the next call waits for it.
		st.cases.Add(1)
		if _, _, err := m.Execute(ctx, "kill -9 $$", 0); !errors.Is(err, backdoor.ErrRestarted) {
			t.Errorf("kill -9 $$: %v, want ErrRestarted", err)
		}
		st.exact(t, ctx, m, "after kill -9 $$", "echo back", []byte("back\n"))
	})

	t.Run("root file system full", func(t *testing.T) {
		st.cases.Add(1)
		// Most of it at once, the rest block by block.
		mustExec(t, ctx, m, "fallocate -l $(( ($(stat -f -c %f /) - 256) * $(stat -f -c %S /) )) /fill || true; "+
			"dd if=/dev/zero of=/fill2 bs=4k 2>/dev/null || true")
		// ext4 keeps up to 4096 clusters for metadata: "full" means a
		// data write fails.
		if out := mustExec(t, ctx, m, "head -c 1048576 /dev/zero >/fill3 2>/dev/null && echo writable || echo full"); out != "full\n" {
			t.Errorf("the root file system is not full: %q", out)
		}
		cmd, want := xs(1 << 20)
		st.exact(t, ctx, m, "1 MiB with a full root", cmd, want)
		mustExec(t, ctx, m, "rm -f /fill /fill2 /fill3")
	})

	t.Run("output fills the backdoor's tmpfs", func(t *testing.T) {
		// A 1 MiB tmpfs, picked up by the next shell.
		st.cases.Add(1)
		mustExec(t, ctx, m, "mount -o remount,size=1m /run/distrotest-backdoor")
		if _, _, err := m.Execute(ctx, "kill -9 $$", 0); !errors.Is(err, backdoor.ErrRestarted) {
			t.Fatalf("restarting the shell: %v", err)
		}
		_, out, err := m.Execute(ctx, "head -c 3145728 /dev/zero || true", 0)
		if !errors.Is(err, backdoor.ErrOutputSpace) || out != nil {
			t.Errorf("3 MiB into 1 MiB: %d bytes, %v; want ErrOutputSpace", len(out), err)
		} else {
			t.Logf("error: %v", err)
		}
		mustExec(t, ctx, m, "mount -o remount,size=50% /run/distrotest-backdoor")
		if _, _, err := m.Execute(ctx, "kill -9 $$", 0); !errors.Is(err, backdoor.ErrRestarted) {
			t.Fatalf("restarting the shell: %v", err)
		}
		cmd, want := xs(3 << 20)
		st.exact(t, ctx, m, "3 MiB after", cmd, want)
	})

	t.Run("four machines at once", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, mm := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd, want := xs(8 << 20)
				st.exact(t, ctx, mm, "8 MiB, four at once", cmd, want)
				bin, binWant := binCommand(1 << 17)
				st.exact(t, ctx, mm, "binary 1.4 MiB, four at once", bin, binWant)
			}()
		}
		wg.Wait()
	})

	t.Run("mid-command ends", func(t *testing.T) {
		// A reboot to the shell takes 1-5 minutes under load.
		ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(3)
		st.cases.Add(3)
		go func() { // kernel panic: reported by pvpanic, QEMU stopped
			defer wg.Done()
			mm := ms[1]
			// The Debian kernel has pvpanic's ACPI driver as a module
			// (CONFIG_PVPANIC_MMIO=m), which udev loads for QEMU0001.
			if st, mods, err := mm.Execute(ctx, "grep -o '^pvpanic[a-z_]*' /proc/modules", 0); st != 0 || err != nil {
				t.Errorf("the guest has no pvpanic driver loaded (status %d, %v)", st, err)
			} else {
				t.Logf("pvpanic modules in the guest: %q", mods)
			}
			start := time.Now()
			_, _, err := mm.Execute(ctx, "sleep 1; echo c >/proc/sysrq-trigger; sleep 600", 0)
			if !errors.Is(err, ErrGuestPanicked) || !strings.Contains(err.Error(), "machine ch2: the guest kernel panicked while running") ||
				!strings.Contains(err.Error(), "Kernel panic - not syncing") {
				t.Errorf("kernel panic mid-command: %v, want ErrGuestPanicked with the panic's line", err)
			}
			t.Logf("kernel panic mid-command: failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if mm.IsRunning() {
				t.Error("qemu still runs after the guest's panic")
			}
		}()
		go func() { // QEMU killed
			defer wg.Done()
			mm := ms[2]
			errc := make(chan error, 1)
			go func() {
				_, _, err := mm.Execute(ctx, "head -c 1000000000 /dev/zero | tr '\\0' x", 0)
				errc <- err
			}()
			time.Sleep(3 * time.Second)
			if err := syscall.Kill(mm.current().proc.Pid(), syscall.SIGKILL); err != nil {
				t.Error(err)
				return
			}
			err := <-errc
			if err == nil || !strings.Contains(err.Error(), "machine ch3: qemu exited (signal: killed) while running") {
				t.Errorf("QEMU killed mid-command: %v", err)
			}
		}()
		go func() { // reboot; then the machine is usable again
			defer wg.Done()
			mm := ms[3]
			_, _, err := mm.Execute(ctx, "(sleep 1; systemctl reboot) >/dev/null 2>&1 & sleep 600", 0)
			if !errors.Is(err, backdoor.ErrRestarted) {
				t.Errorf("reboot mid-command: %v, want ErrRestarted", err)
				return
			}
			st.exact(t, ctx, mm, "after the reboot", "echo rebooted", []byte("rebooted\n"))
		}()
		wg.Wait()
	})

	t.Logf("channel fault suite: %d cases, %d bytes checked byte-exact, %d lost or wrong",
		st.cases.Load(), st.bytes.Load(), st.lost.Load())
}

func firstBytes(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
