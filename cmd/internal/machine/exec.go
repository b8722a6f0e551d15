package machine

// The guest's shell: waiting for it and running commands.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
)

// WaitForShell starts the machine if needed and waits until the guest's
// shell is ready.
func (m *Machine) WaitForShell(ctx context.Context) error {
	_, err := m.shell(ctx)
	return err
}

// shell returns the current run with a ready shell, starting the machine
// and waiting for the shell as needed.
func (m *Machine) shell(ctx context.Context) (*run, error) {
	if err := m.uninstrumented(); err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	r := m.current()
	if r == nil {
		return nil, fmt.Errorf("machine %s is not running", m.cfg.Name)
	}
	if r.ready.Load() {
		return r, nil
	}
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	if r.ready.Load() {
		return r, nil
	}
	m.log.Info("waiting for the guest shell")
	start := time.Now()
	bctx, stop := r.bind(ctx)
	defer stop()
	if err := r.shell.WaitReady(bctx); err != nil {
		if diedDuring(r, err) {
			if r.rebooting.Load() || rebootedCold(r) {
				// The guest rebooted under -no-reboot: boot it again,
				// from the same disk, as a fresh start would.
				m.log.Info("qemu ended at the guest's reboot; starting it again")
				<-r.ended
				r.readyMu.Unlock()
				defer r.readyMu.Lock()
				return m.shell(ctx)
			}
			<-r.ended // the console log has the guest's last words then
			if m.panickedBooting() {
				// A kernel panic before the shell was up is no test's
				// doing (TCG on a loaded host); boot once more, and fail
				// as usual if it panics again.
				m.log.Warn("the guest kernel panicked while booting, before its shell was up: booting it once more (the panic is in the console log)")
				r.readyMu.Unlock()
				defer r.readyMu.Lock()
				return m.shell(ctx)
			}
			return nil, m.exitedErr(r, "waiting for the guest shell")
		}
		return nil, fmt.Errorf("machine %s: waiting for the guest shell: %w", m.cfg.Name, err)
	}
	r.ready.Store(true)
	m.panicMu.Lock()
	m.bootPanics, m.retriedPanic = kernelPanics(m.ConsoleLog()), false
	m.panicMu.Unlock()
	m.log.Info("guest shell ready", "waited", time.Since(start).Round(time.Millisecond), "since_start", time.Since(r.started).Round(time.Millisecond))
	return r, nil
}

// uninstrumented is the error of a shell call on an image booted as it
// is (manifest strategy "none"), nil otherwise.
func (m *Machine) uninstrumented() error {
	if m.manifest.Uninstrumented == "" {
		return nil
	}
	return fmt.Errorf("machine %s: the image is not instrumented, so it has no shell (%s): only the console (wait_for_console_text, send_console), the screen (screenshot, wait_for_text), keys (send_key, send_chars) and power (start, shutdown, crash) work", m.cfg.Name, m.manifest.Uninstrumented)
}

// Execute runs command in the guest's root shell (starting the machine and
// waiting for the shell first) and returns its exit status and stdout.
// With timeout > 0 the guest kills the command after timeout (status 124).
func (m *Machine) Execute(ctx context.Context, command string, timeout time.Duration) (int, []byte, error) {
	r, err := m.shell(ctx)
	if err != nil {
		return 0, nil, err
	}
	bctx, stop := r.bind(ctx)
	defer stop()
	res, err := r.shell.Run(bctx, command, timeout)
	if err != nil {
		if errors.Is(err, backdoor.ErrRestarted) {
			r.ready.Store(false)
		}
		if diedDuring(r, err) {
			return 0, nil, m.exitedErr(r, fmt.Sprintf("running %q", command))
		}
		return 0, nil, fmt.Errorf("machine %s: running %q: %w", m.cfg.Name, command, err)
	}
	return res.Status, res.Stdout, nil
}

// kernelPanicMarker is what a Linux kernel prints when it panics.
const kernelPanicMarker = "Kernel panic - not syncing"

// panicLine is the console's last line that says why the kernel
// panicked, or a pointer to the console log when it has none.
func panicLine(console string) string {
	i := strings.LastIndex(console, kernelPanicMarker)
	if i < 0 {
		return "see the console log"
	}
	line, _, _ := strings.Cut(console[i:], "\n")
	return strings.TrimSpace(line)
}

// kernelPanics counts the kernel panics in a console log.
func kernelPanics(console string) int { return strings.Count(console, kernelPanicMarker) }

// panickedBooting reports whether the guest kernel panicked in a boot
// whose shell never came up and that boot was not itself a retry: one
// retry, then a panic is an error as any other end of QEMU.
func (m *Machine) panickedBooting() bool {
	m.panicMu.Lock()
	defer m.panicMu.Unlock()
	n := kernelPanics(m.ConsoleLog())
	if n <= m.bootPanics || m.retriedPanic {
		return false
	}
	m.bootPanics = n
	m.retriedPanic = true
	return true
}
