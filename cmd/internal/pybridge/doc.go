// Package pybridge runs a test script in CPython against the Go test API.
//
// Run starts python3 (or the interpreter it is given) on an embedded shim,
// shim/distrotest_driver.py, with one end of a unix socket pair on file
// descriptor 3. The shim gives the script the globals of nixpkgs' NixOS test
// driver (start_all, machine, subtest, retry, t, ...) and implements its
// Machine methods, with nixpkgs' names, signatures and defaults, on top of
// a few primitives it asks Go for: execute, start, shutdown, console reads,
// screenshots, copies, link control, QMP commands and events, log blocks.
// Every timeout, sleep and interval takes a datetime.timedelta or seconds
// (nixpkgs' Duration), and the shim installs an importable test_driver
// package (test_driver.machine, .machine.qmp, .errors, .logger,
// .polling_condition, .duration, .driver) whose modules re-export the
// shim's own objects, so `from test_driver.errors import
// RequestedAssertionFailed` catches what succeed() raises.
//
// # Protocol
//
// JSON lines in both directions. Python sends requests
//
//	{"id": 7, "method": "execute", "block": 3, "params": {"machine": "server", "command": "true", "timeout": 900, "wait": true}}
//
// and Go answers each with {"id": 7, "result": {...}} or
// {"id": 7, "error": {"kind": "machine"|"usage"|"canceled", "message": "..."}}.
// Requests run concurrently (a script may use threads); "block" is the log
// block of the calling Python thread (0: the root), under which whatever
// Go logs for the request nests. A request with id 0 is a notification and
// gets no reply; the only one is "cancel" {"id": N}, sent when Ctrl-C
// interrupts a call in the interactive shell. The first request is "hello",
// whose reply tells the shim the machines, VLANs, out dir and script; a
// failing script ends with a "fail" request carrying its traceback, limited
// to the script's own frames. See handlers in handlers.go for every method.
//
// The script is compiled with its real file name before anything runs
// (Check does only that, so a runner can report a syntax error before it
// boots a machine). When the context ends (global timeout, SIGINT/SIGTERM)
// the Python process group is killed and Run returns the context's cause.
//
// shim/distrotest_driver.pyi is a stub of the script's globals for editors
// and type checkers (Stub returns it).
//
// The tests run the real shim against pybridgetest.Machine, a machine whose
// guest is a local bash speaking the real backdoor protocol
// (backdoor/backdoortest) to a real backdoor.Shell; they need python3 but
// no VM. compat_test.go
// checks the nixpkgs-compatibility rows (durations, test_driver imports,
// attributes, QMP, message texts) and readme_test.go keeps the README's API
// table in step with the stub. The same rows on a real VM:
// tests/compat (DISTROTEST_VM_TESTS=1).
package pybridge
