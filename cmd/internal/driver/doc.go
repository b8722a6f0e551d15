// Package driver runs one distrotest test: it reads driver.json (Config,
// decoded strictly: an unknown key is an error naming the file, line and
// key) or builds the same from command-line flags (AdHoc), then Run sets up
// the VLAN switches and the machines (numbered by name from 1), runs the
// Python test script through cmd/internal/pybridge under the global
// timeout, and tears everything down however the run ends.
//
// Before any machine starts, Run also checks every exported directory
// (exists, is a directory, readable) and picks each machine's share
// transport (9p or virtiofs: the run's override, the config, the image's
// manifest, DefaultShareTransport).
//
// Run's guarantees: the script's syntax is checked before anything starts;
// the exit is clean after a pass, a failure, the global timeout, a signal
// (the context) or a panic: no QEMU process, socket, overlay or temporary
// directory is left, except the machines' state when KeepState asks for it
// (then it lives in <cache>/state/<test>/<machine> and is reused). The out
// dir gets <machine>/console.log, screenshots, copies from machines and,
// when asked, the JUnit XML report.
//
// It is not the machine (cmd/internal/machine), the switch
// (cmd/internal/vlan) or the log (cmd/internal/report). Its tests use
// pybridgetest's bash-backed machines and need python3, not a VM.
package driver
