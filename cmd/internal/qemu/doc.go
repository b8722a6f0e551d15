// Package qemu knows how to run QEMU for distrotest: it probes the host once
// (which binary, which version, and whether KVM really boots a kernel), builds
// the command line of one machine as a pure function, and starts the process
// so that it never outlives the runner.
//
// The three parts are kept apart on purpose:
//
//   - Probe looks at the host and returns plain data (Host). Its answer about
//     KVM is cached per host in the cache directory, because finding out that
//     KVM is broken costs a few seconds: /dev/kvm may open fine and still be
//     unable to run a stock kernel (a paravirtual "kvm-pvm" hangs or aborts
//     on them), so Probe boots a real kernel under KVM and waits for it to
//     reach its panic on the missing root file system.
//   - Cmdline turns a Config and a Host into QEMU's arguments. It does no I/O
//     and is table-tested.
//   - Start runs QEMU in its own process group with a parent-death signal,
//     logs what it prints, and lets the caller wait for it or kill it;
//     StartHelper does the same for the daemons QEMU needs (virtiofsd).
//
// It is not the machine abstraction (sockets, the guest shell, QMP): that is
// cmd/internal/machine, which uses this package.
//
// Tests: `go test ./cmd/internal/qemu` runs the pure tests and, when
// qemu-system-x86_64 is installed, a short real probe under TCG. The KVM
// probe itself runs only with DISTROTEST_VM_TESTS=1.
package qemu
