package pybridge

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNixpkgsCompat runs, against the bash-backed machine, a script
// written the way post-#542374 nixpkgs scripts are: durations as
// datetime.timedelta with nixpkgs' keyword names, imports from the
// test_driver package, the machine attributes and message texts scripts
// match on. The script checks the results itself.
func TestNixpkgsCompat(t *testing.T) {
	e := newEnv(t, "machine")
	shared := filepath.Join(e.dir, "shared-xchg")
	if err := os.MkdirAll(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	script := `import datetime as dt
import pathlib
import time

import test_driver
from test_driver.errors import MachineError as ME, RequestedAssertionFailed as RAF, TestScriptError
from test_driver.machine import retry as imported_retry, Machine as M, BaseMachine, QemuMachine
from test_driver.machine.qmp import QMPAPIError, QMPSession
from test_driver.polling_condition import PollingConditionError
from test_driver.logger import LogLevel

with subtest("machine attributes"):
    t.assertIsInstance(machine.out_dir, pathlib.Path)
    t.assertIsInstance(driver.out_dir, pathlib.Path)
    t.assertEqual(machine.out_dir / "x", pathlib.Path(os.environ["OUT"]) / "x")
    t.assertEqual(machine.shared_dir, pathlib.Path(os.environ["SHARED"]))
    t.assertIsInstance(machine.state_dir, pathlib.Path)
    t.assertFalse(machine.booted)
    t.assertFalse(machine.connected)
    machine.start(allow_reboot=True)
    t.assertTrue(machine.booted)
    t.assertTrue(machine.connected)
    machine.log_serial("a serial line from the script")

with subtest("the test_driver package re-exports the script's objects"):
    t.assertIs(RAF, RequestedAssertionFailed)
    t.assertIs(ME, MachineError)
    t.assertIs(imported_retry, retry)
    t.assertIsInstance(machine, M)
    t.assertIsInstance(machine, BaseMachine)
    t.assertIsInstance(machine, QemuMachine)
    t.assertTrue(issubclass(RAF, TestScriptError))
    t.assertTrue(issubclass(QMPAPIError, RuntimeError))
    t.assertIs(test_driver.machine.qmp.QMPAPIError, QMPAPIError)
    t.assertEqual(machines_nspawn, [])

with subtest("durations: timedelta everywhere, nixpkgs' keywords"):
    t.assertEqual(machine.succeed("echo hi", timeout=dt.timedelta(seconds=30)), "hi\n")
    t.assertEqual(machine.execute("sleep 30", timeout=dt.timedelta(seconds=1))[0], 124)
    machine.wait_until_succeeds("true", timeout=dt.timedelta(minutes=1))
    machine.wait_until_fails("false", timeout=dt.timedelta(minutes=1))
    machine.succeed("touch dt-file")
    machine.wait_for_file("dt-file", timeout=dt.timedelta(seconds=20))
    machine.succeed("systemctl start d.service")
    machine.wait_for_unit("d.service", timeout=dt.timedelta(seconds=20))
    started = time.monotonic()
    machine.sleep(dt.timedelta(seconds=1))
    machine.sleep(duration=dt.timedelta(milliseconds=200))
    machine.sleep(secs=0)
    machine.sleep(1)
    t.assertGreaterEqual(time.monotonic() - started, 2.0)
    calls = []
    retry(lambda last: calls.append(last) or len(calls) == 2, timeout=dt.timedelta(seconds=20))
    retry(lambda last: True, timeout=30)
    retry(lambda last: True, timeout_seconds=dt.timedelta(seconds=30))
    t.assertEqual(calls, [False, False])
    with t.assertRaisesRegex(TypeError, "only one of"):
        retry(lambda last: True, timeout=1, timeout_seconds=1)
    with t.assertRaisesRegex(TypeError, "expected a timedelta"):
        machine.succeed("true", timeout="10")
    with t.assertRaisesRegex(RequestedAssertionFailed, r"^action timed out after [0-9.]+ seconds \(timeout=1\)$"):
        retry(lambda last: False, timeout=dt.timedelta(seconds=1))
    with t.assertRaisesRegex(RequestedAssertionFailed, "^action timed out after"):
        machine.wait_for_console_text("never-printed", timeout=dt.timedelta(seconds=1))

with subtest("polling_condition(interval=...) and Poll.wait(timeout_seconds=...)"):
    seen = []
    @polling_condition(interval=dt.timedelta(seconds=0))
    def fine():
        "fine"
        seen.append(1)
        return True
    with fine:
        machine.succeed("true")
    t.assertGreater(len(seen), 0)
    t.assertEqual(fine.condition.description, "fine")
    fine.wait(timeout_seconds=dt.timedelta(seconds=5))
    fine.wait(timeout=5)
    @polling_condition(seconds_interval=0, description="never holds")
    def broken():
        return False
    with t.assertRaises(PollingConditionError):
        with broken:
            machine.succeed("true")

with subtest("message texts scripts match on"):
    machine.succeed("systemctl stop d.service")
    with t.assertRaisesRegex(RequestedAssertionFailed, r"^Expected unit 'd.service' to to be in state 'active' but it is in state 'inactive'$"):
        machine.require_unit_state("d.service")
    r = machine.send_monitor_command("info status")
    t.assertIn("running", r)
    # the transcript of nixpkgs' HMP socket: readline's echo, the output, the prompt
    t.assertTrue(r.startswith("i\x1b[K\x1b[Din\x1b[K\x1b[D\x1b[Dinf"), repr(r))
    t.assertTrue(r.endswith("info status\x1b[K\r\nVM status: running\r\n(qemu) "), repr(r))
    t.assertEqual(machine.send_monitor_command("stop"), "s\x1b[K\x1b[Dst\x1b[K\x1b[D\x1b[Dsto\x1b[K\x1b[D\x1b[D\x1b[Dstop\x1b[K\r\n(qemu) ")
    machine.send_monitor_command("cont")
    # get_console_log: nixpkgs joins the complete lines, stripped
    machine.succeed("printf 'padded-line  \\r\\nsecond-line\\npartial-li' >&2")
    console = machine.get_console_log()
    t.assertIn("padded-line\nsecond-line", console)
    t.assertNotIn("partial-li", console)
    t.assertFalse(console.endswith("\n"), repr(console[-20:]))
    t.assertNotIn("\r", console)
    machine.succeed("echo ne >&2")
    t.assertTrue(machine.get_console_log().endswith("partial-line"), repr(machine.get_console_log()[-20:]))
    # get_unit_property on output it cannot parse: nixpkgs' assert
    machine.systemctl = lambda q, user=None: (0, "no equals sign\n")
    with t.assertRaisesRegex(AssertionError, r'^systemctl show --property "ActiveState" "d.service"produced invalid output: no equals sign'):
        machine.get_unit_property("d.service", "ActiveState")
    machine.systemctl = lambda q, user=None: (0, "SubState=dead\n")
    with t.assertRaises(AssertionError) as caught:
        machine.get_unit_property("d.service", "ActiveState")
    t.assertNotIsInstance(caught.exception, RequestedAssertionFailed)
    del machine.systemctl
    t.assertEqual(machine.get_unit_property("d.service", "ActiveState"), "inactive")

with subtest("qmp_client and wait_for_qmp_event"):
    t.assertIsInstance(machine.qmp_client, QMPSession)
    t.assertEqual(machine.qmp_client.send("query-status")["return"]["status"], "running")
    with t.assertRaises(QMPAPIError) as cm:
        machine.qmp_client.send("no-such-command")
    t.assertEqual(cm.exception.class_name, "CommandNotFound")
    t.assertIn("[CommandNotFound]", str(cm.exception))
    ev = machine.qmp_client.wait_for_event(timeout=dt.timedelta(seconds=5))
    t.assertEqual(ev["event"], "RESUME")
    t.assertIn("seconds", ev["timestamp"])
    list(machine.qmp_client.events())  # drain
    t.assertEqual(list(machine.qmp_client.events()), [])
    machine.shutdown()
    ev = machine.wait_for_qmp_event(lambda e: e["event"] == "SHUTDOWN", timeout=dt.timedelta(seconds=10))
    t.assertTrue(ev["data"]["guest"])
    with t.assertRaises(TimeoutError):
        machine.wait_for_qmp_event(lambda e: True, timeout=dt.timedelta(seconds=1))

with subtest("create_machine says which form it cannot run"):
    with t.assertRaisesRegex(MachineError, "cannot run a start command"):
        create_machine("qemu-system-x86_64 -m 512", name="other")
    with t.assertRaisesRegex(MachineError, "cannot create machines"):
        create_machine(name="other")  # this test's runner has no CreateMachine

with subtest("log.set_log_level"):
    log.set_log_level(LogLevel.WARNING)
    log.info("hidden-info-line")
    log.warning("shown-warning-line")
    log.set_log_level("info")
    log.info("shown-info-line")
    with t.assertRaises(ValueError):
        log.set_log_level("loud")

t.assertIs(driver.test_symbols()["machine"], machine)
`
	cfg := e.config(t, script)
	cfg.SharedDirs = map[string]string{"machine": shared}
	cfg.Env = []string{"OUT=" + e.out, "SHARED=" + shared}
	if err := runCfg(t, e, cfg); err != nil {
		t.Fatalf("script failed: %v", err)
	}
	if !e.machines[0].AllowReboot() {
		t.Error("start(allow_reboot=True) did not reach the machine")
	}
	log := e.log.String()
	for _, want := range []string{"shown-warning-line", "shown-info-line", "a serial line from the script"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "hidden-info-line") {
		t.Error("log.set_log_level(WARNING) did not hide an info line")
	}
}

// TestOCRDisabledMessage pins nixpkgs' text for OCR without tesseract
// (Python's PATH has no tesseract, whatever the host has installed).
func TestOCRDisabledMessage(t *testing.T) {
	e := newEnv(t, "machine")
	// The interpreter itself, not a wrapper script that needs PATH.
	exe, err := exec.Command(python(""), "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(t, `machine.start()
try:
    machine.wait_for_text("foobar", timeout=1)
except Exception as e:
    t.assertEqual(str(e), "OCR requested but enableOCR is false")
else:
    raise Exception("wait_for_text passed without OCR")
`)
	cfg.Python = strings.TrimSpace(string(exe))
	cfg.Env = []string{"PATH=/nonexistent-distrotest-no-tesseract"}
	if err := runCfg(t, e, cfg); err != nil {
		t.Fatalf("script failed: %v", err)
	}
}

func runCfg(t *testing.T, e *env, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, cfg)
	t.Logf("log:\n%s\npython output:\n%s", e.log.String(), e.stdout.String())
	return err
}

// TestLogErrorExits: as in nixpkgs, log.error ends the script with status 1.
func TestLogErrorExits(t *testing.T) {
	e := newEnv(t, "machine")
	err := e.run(t, "log.error('fatal thing')\nraise Exception('not reached')\n")
	var se *ScriptError
	if !errors.As(err, &se) || se.Message != "the test script exited with 1" {
		t.Fatalf("err = %v, want the script to exit with 1", err)
	}
	if !strings.Contains(e.log.String(), "error: fatal thing") {
		t.Error("the error line is not in the log")
	}
}
