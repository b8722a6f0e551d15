// Package backdoor is the host side of the root shell a distrotest guest runs
// on its virtconsole (/dev/hvc0): it waits for the shell, installs a small set
// of shell functions, then runs one command at a time and returns its exit
// status and standard output.
//
// The guest side is the NixOS-compatible backdoor of cmd/internal/guest: after
// printing guest.Marker it runs `bash --norc /dev/hvc0` as root in raw -echo
// mode, with stderr on the serial console. This package adds no file to the
// image; everything it needs it sends over the shell itself (see Preamble).
//
// Compared to the NixOS test driver, a command runs in a subshell with
// `set -euo pipefail` and stdin from /dev/null, but its stdout goes to a
// file in the guest rather than a pipe, so a command that leaves a background
// process behind (`sleep 1000 &`) returns at once. Timeouts are enforced in
// the guest (the command's process group is killed) and on the host (a hard
// deadline after which the shell is considered broken).
//
// It is not a terminal: there is no prompt, no job control for the user and
// no interactive use. Its tests run a real local bash as the fake guest; they
// need no VM and run with plain `go test`.
package backdoor
