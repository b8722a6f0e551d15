package machine

// Power operations: shutdown, reboot, crash and waiting for the end.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
)

// Shutdown powers the guest off through its shell and waits for QEMU to
// exit. A machine that is not running is left alone.
func (m *Machine) Shutdown(ctx context.Context) error {
	if !m.IsRunning() {
		return nil
	}
	if m.uninstrumented() != nil {
		return m.powerButton(ctx)
	}
	r, err := m.shell(ctx)
	if err != nil {
		return err
	}
	m.log.Info("shutting down")
	bctx, stop := r.bind(ctx)
	defer stop()
	go func() {
		// The reply may never come: the guest powers off under the shell.
		_, _ = r.shell.Run(bctx, "poweroff", 0)
	}()
	return m.waitExit(ctx, r, "waiting for the guest to power off")
}

// powerButtonRepeat is how often the power button is pressed again while
// the guest has not powered off: a press before systemd-logind watches
// the button's input device is lost (seen in TestUninstrumented: a press
// right after the login prompt, under TCG, and the guest ran on for
// 15 minutes). logind ignores presses once the power-off is under way.
const powerButtonRepeat = 10 * time.Second

// powerButton presses the ACPI power button (QMP system_powerdown), for a
// guest without a shell, again every powerButtonRepeat, and waits for
// QEMU to exit.
func (m *Machine) powerButton(ctx context.Context) error {
	r := m.current()
	if r == nil {
		return nil
	}
	m.log.Info("shutting down with the ACPI power button")
	press := func(ctx context.Context) error {
		if err := r.qmp.Execute(ctx, "system_powerdown", nil, nil); err != nil && !diedDuring(r, err) {
			return fmt.Errorf("machine %s: pressing the power button: %w", m.cfg.Name, err)
		}
		return nil
	}
	if err := press(ctx); err != nil {
		return err
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(powerButtonRepeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m.log.Info("the guest is still running: pressing the power button again")
				_ = press(pctx) // a failure here is QEMU exiting, which waitExit sees
			case <-pctx.Done():
				return
			case <-r.ended:
				return
			}
		}
	}()
	return m.waitExit(ctx, r, "waiting for the guest to power off")
}

// Reboot reboots the guest through its shell and waits for the shell of
// the next boot. QEMU keeps running.
func (m *Machine) Reboot(ctx context.Context) error {
	r, err := m.shell(ctx)
	if err != nil {
		return err
	}
	m.log.Info("rebooting")
	r.ready.Store(false)
	bctx, stop := r.bind(ctx)
	_, err = r.shell.Run(bctx, "reboot", 0)
	stop()
	if err != nil && !errors.Is(err, backdoor.ErrRestarted) {
		switch {
		case !diedDuring(r, err):
			return fmt.Errorf("machine %s: rebooting: %w", m.cfg.Name, err)
		case !rebootedCold(r):
			return m.exitedErr(r, "rebooting")
		}
	}
	_, err = m.shell(ctx)
	return err
}

// Crash ends QEMU at once (QMP quit), like pulling the plug; the disk keeps
// what the guest wrote to it, and Start boots it again.
func (m *Machine) Crash(ctx context.Context) error {
	r := m.current()
	if r == nil || r.proc.Exited() {
		return nil
	}
	m.log.Info("crashing")
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := r.qmp.Raw(qctx).Quit()
	cancel()
	if err == nil || diedDuring(r, err) {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		werr := m.waitExit(wctx, r, "crashing")
		cancel()
		if werr == nil {
			return nil
		}
	}
	m.log.Warn("qmp quit did not end qemu, killing it", "err", err)
	if err := r.proc.Kill(); err != nil {
		return fmt.Errorf("machine %s: %w", m.cfg.Name, err)
	}
	<-r.ended
	return nil
}

// WaitForShutdown waits until QEMU exits (it does not ask the guest to).
func (m *Machine) WaitForShutdown(ctx context.Context) error {
	r := m.current()
	if r == nil {
		return nil
	}
	return m.waitExit(ctx, r, "waiting for the machine to power off")
}

func (m *Machine) waitExit(ctx context.Context, r *run, doing string) error {
	select {
	case <-r.ended:
		m.mu.Lock()
		if m.run == r {
			m.run = nil
		}
		m.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("machine %s: %s: %w", m.cfg.Name, doing, ctx.Err())
	}
}
