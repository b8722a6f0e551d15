// Package machine is one virtual machine of a test: a QEMU process booted
// from a prepared image (cmd/internal/manifest), its QMP connection
// (cmd/internal/qmp, go-qemu's generated commands), the guest's root shell
// (cmd/internal/backdoor) on the virtio serial port qemu.ShellPortName when
// the image's manifest says so (our prepared images) or else on the
// virtconsole hvc0 (NixOS-style images), and its serial console. It is the test API in Go that the Python bridge
// exposes with nixpkgs' names: Start, Execute, Shutdown, Reboot, Crash,
// WaitForShutdown, Screenshot, SendKey, SendConsole, ForwardPort,
// CopyFromHost, CopyFromMachine, SetLinks (block/unblock), and so on.
//
// A Machine owns:
//   - a private state directory (0700) with a qcow2 overlay over the
//     image's disk, created once, so the disk survives guest reboots and
//     Crash+Start;
//   - unix sockets in a short directory (paths must stay under 108 bytes):
//     the shell and serial sockets are listened on by the Machine and QEMU
//     connects to them at startup, the QMP socket is QEMU's;
//   - OutDir/<name>/console.log, everything the guest printed on ttyS0,
//     also kept in memory for ConsoleLog;
//   - with ShareTransport virtiofs, one virtiofsd per exported directory
//     (the Nix store, read-only, and each share), started before QEMU with
//     its socket in the socket directory and killed when that QEMU exits
//     (each Start starts new ones); guest RAM is then a shared memfd.
//
// Semantics follow the NixOS test driver: Start launches QEMU and returns
// without waiting for the guest; Execute (and everything that needs the
// shell) starts the machine if needed and waits for the shell; Shutdown
// sends poweroff through the shell and waits for QEMU to exit; Crash quits
// QEMU at once through QMP; a guest reboot keeps the QEMU process unless
// SetAllowReboot(false) (nixpkgs' default, -no-reboot). If QEMU
// dies while a call is in progress, the call fails with "machine NAME: qemu
// exited (STATUS) while ..." instead of hanging. Every blocking method is
// bounded by its context.
//
// Boot once, restore many (snapshot.go): with Config.SnapshotDir, the
// first Start restores the machine from the snapshot of its shape (the
// machine booted once to its shell without any identity and saved with
// QEMU's migration, keyed by everything that shapes it), into a disk
// overlay of its own, hot-plugs its virtiofs shares and applies its
// identity, clock and fresh randomness through the shell
// (guest.RestoreScript); later boots (reboot, crash and start) are cold,
// and so is the first one when the restore is impossible or fails, with
// the reason in the log. TestVMRestore is its VM test (it keeps the
// snapshot in DISTROTEST_TEST_SNAPSHOT_DIR when set).
//
// It does not decide the accelerator (cmd/internal/qemu.Probe does), build
// VLAN switches (cmd/internal/vlan) or number machines: the runner does, and
// passes the results in Config.
//
// Tests: the unit tests need no VM (some run qemu-img, and QEMU with a bad
// command line). The VM tests boot a prepared image and run only with
// DISTROTEST_VM_TESTS=1 and DISTROTEST_TEST_IMAGE=<prepared image dir>
// (the registration test also DISTROTEST_TEST_NIX_IMAGE=<a prepared image
// with Nix>, and the virtiofs tests a virtiofsd: DISTROTEST_VIRTIOFSD, PATH
// or VirtiofsdPaths);
// DISTROTEST_TEST_SHELL_PORT=1 puts the shell on the virtio port for images
// whose manifest does not say so (testdata/mkharness.sh). TestVMChannelFaults
// is the shell channel's fault suite (four machines); BenchmarkVMChannel
// compares the protocol with the NixOS framing (run it with -run '^$'
// -bench VMChannel -benchtime 1x). testdata/mkharness.sh builds a tiny image
// from the host's kernel, bash and busybox that boots in seconds under TCG,
// for development (it serves the shell on either device).
package machine
