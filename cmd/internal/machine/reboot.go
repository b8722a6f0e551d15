package machine

// SetAllowReboot chooses what a guest reboot does from the next Start on:
// with allow (the default) QEMU keeps running and the guest boots again in
// it; without, QEMU runs with -no-reboot and ends, as nixpkgs' driver starts
// machines unless start(allow_reboot=True).
func (m *Machine) SetAllowReboot(allow bool) { m.noReboot.Store(!allow) }

// Disconnect forgets the guest's shell: the next call that needs it waits
// for the shell of the next boot (nixpkgs' reboot() sets connected = False
// after pressing Ctrl-Alt-Delete). When that boot never comes because QEMU
// ended at the reboot (-no-reboot), that call starts QEMU again.
func (m *Machine) Disconnect() {
	if r := m.current(); r != nil {
		r.rebooting.Store(true)
		r.ready.Store(false)
	}
}
