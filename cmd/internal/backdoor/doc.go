// Package backdoor is the host side of the root shell a distrotest guest runs
// for the test driver: it waits for the shell's marker, installs a small set
// of shell functions, then runs one command at a time and returns its exit
// status and standard output, checked.
//
// The guest side is a bash reading commands from its shell device, with
// stderr on the serial console, after printing guest.Marker (the NixOS test
// driver's "Spawning backdoor root shell..."). Our prepared images put it
// on the virtio serial port guest.ShellPort, which has flow control
// (Encoding Raw); images that bring a NixOS-style backdoor have it on the
// virtconsole hvc0, a terminal that drops guest output when the host is
// slow (Encoding Base64, the compatibility mode). This package adds no file
// to the image; everything it needs it sends over the shell (see Preamble).
//
// Nothing is lost silently. Every reply carries the output's byte count and
// its POSIX cksum CRC (cksum(1) gives both in one pass and was the fastest
// of cksum, md5sum, sha1sum, b2sum and sha256sum on 64 MiB in a Debian 13
// guest under TCG: 0.36 s against 0.53 s, 1.7 s, 1.0 s and 2.2 s). A reply
// that is short, garbled or fails its checksum fails the call with
// ErrBadReply and never returns partial output; the host then finds the end
// of the reply (or asks the shell for a sync line) so that the next command
// starts in step. When a reply stalls, the host probes the shell, whose
// answer can only come after the reply: an answer that arrives first proves
// bytes were lost, so a lost trailer fails the call instead of hanging it.
// Output that filled the file system holding it fails with ErrOutputSpace.
//
// Compared to the NixOS test driver, a command runs in a subshell with
// `set -euo pipefail` and stdin from /dev/null, but its stdout goes to a
// file in the guest rather than a pipe, so a command that leaves a
// background process behind (`sleep 1000 &`) returns at once. The file is
// in the backdoor's own tmpfs ($DISTROTEST_BACKDOOR_TMPFS, mounted by our
// backdoor script), so commands work with a full or read-only root file
// system; elsewhere it is in /run, /dev/shm or /tmp and a full file system
// is checked after each command. Timeouts are enforced in the guest (the
// command's process group is killed) and on the host (a deadline after
// which the shell is resynchronised before the next command).
//
// It is not a terminal: there is no prompt, no job control for the user and
// no interactive use. Its tests run a real local bash as the fake guest
// (backdoortest: the real guest script's handshake over pipes like the
// port, or a pty like hvc0), with faults injected into the stream; they need
// no VM and run with plain `go test`. The same fake guest serves the tests
// of the runner and the Python bridge (pybridge/pybridgetest).
// Shell.RunNixOSFraming is the NixOS driver's framing over the same shell,
// the baseline of the benchmarks.
package backdoor
