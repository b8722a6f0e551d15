package pybridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/pybridge/pybridgetest"
	"github.com/distrotest/distrotest/cmd/internal/report"
)

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(python("")); err != nil {
		t.Fatalf("python3 is needed for these tests (install python3 or set %s): %v", EnvPython, err)
	}
}

// fakeSystemctl is a systemctl for the bash "guest": unit states are files
// in $FAKE_SYSTEMD, pending jobs are files named *.job there.
const fakeSystemctl = `#!/bin/bash
d=${FAKE_SYSTEMD:?}
args=() prop=
for a in "$@"; do
  case $a in
    --no-pager|--full) ;;
    --property=*) prop=${a#--property=} ;;
    *) args+=("$a") ;;
  esac
done
unit=${args[1]:-}
st() { cat "$d/$1" 2>/dev/null || echo inactive; }
case ${args[0]} in
  show)
    if [ -n "$prop" ]; then
      case $prop in
        ActiveState) echo "ActiveState=$(st "$unit")" ;;
        *) echo "$prop=" ;;
      esac
    else
      printf 'Id=%s\nActiveState=%s\nType=oneshot\nDescription=a = b\n' "$unit" "$(st "$unit")"
    fi ;;
  list-jobs)
    if compgen -G "$d/*.job" >/dev/null; then echo "1 jobs listed."; else echo "No jobs running."; fi ;;
  start) echo active >"$d/$unit" ;;
  stop) echo inactive >"$d/$unit" ;;
  is-active) s=$(st "$unit"); echo "$s"; [ "$s" = active ] ;;
  *) echo "fake systemctl: $*" >&2; exit 1 ;;
esac
`

type env struct {
	dir      string
	out      string
	machines []*pybridgetest.Machine
	vlans    []*pybridgetest.VLAN
	log      bytes.Buffer
	stdout   bytes.Buffer
	rep      *report.Log
}

// newEnv makes machines named names, whose bash "guest" has the fake
// systemctl first in PATH.
func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	needPython(t)
	e := &env{dir: t.TempDir()}
	e.out = filepath.Join(e.dir, "out")
	bin := filepath.Join(e.dir, "bin")
	units := filepath.Join(e.dir, "units")
	for _, d := range []string{e.out, bin, units} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		e.machines = append(e.machines, pybridgetest.New(n, e.dir,
			"PATH="+bin+":"+os.Getenv("PATH"), "FAKE_SYSTEMD="+units))
	}
	t.Cleanup(func() {
		for _, m := range e.machines {
			m.Close() // the guest's shell and its temp dir
		}
	})
	e.rep = report.New(&e.log, report.Options{Serial: true})
	for _, m := range e.machines {
		m.SetConsole(e.rep.SerialWriter(m.Name()))
	}
	return e
}

func (e *env) config(t *testing.T, script string) Config {
	t.Helper()
	path := filepath.Join(e.dir, "test.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Script: path, OutDir: e.out, Log: e.rep, Stdout: &e.stdout, Stderr: &e.stdout}
	for _, m := range e.machines {
		cfg.Machines = append(cfg.Machines, m)
	}
	for _, v := range e.vlans {
		cfg.VLANs = append(cfg.VLANs, v)
	}
	return cfg
}

func (e *env) run(t *testing.T, script string, extraEnv ...string) error {
	t.Helper()
	cfg := e.config(t, script)
	cfg.Env = extraEnv
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, cfg)
	t.Logf("log:\n%s\npython output:\n%s", e.log.String(), e.stdout.String())
	return err
}

// TestAPI runs every method that needs no real VM against the bash-backed
// machine; the script checks the results itself.
func TestAPI(t *testing.T) {
	e := newEnv(t, "machine")
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	unixPath := filepath.Join(e.dir, "s.sock")
	unix, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	hostFile := filepath.Join(e.dir, "host.txt")
	if err := os.WriteFile(hostFile, []byte("host content\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	script := `import time
start_all()
t.assertTrue(machine.is_up())
t.assertIs(machine, machines[0])
t.assertEqual(machine.name, "machine")

with subtest("commands"):
    t.assertEqual(machine.succeed("echo hello").strip(), "hello")
    t.assertEqual(machine.succeed("echo a", "echo b"), "a\nb\n")
    t.assertEqual(machine.fail("echo out; false"), "out\n")
    t.assertEqual(machine.execute("printf 'a\\nb'; exit 7"), (7, "a\nb"))
    t.assertEqual(machine.execute("exit 3", check_return=False), (-1, ""))
    t.assertEqual(machine.execute("true", check_output=False), (-2, ""))
    # set -euo pipefail, like nixpkgs
    t.assertNotEqual(machine.execute("false | true")[0], 0)
    t.assertNotEqual(machine.execute("echo $UNSET_VARIABLE")[0], 0)
    # a per-command timeout kills the command (status 124)
    started = time.monotonic()
    t.assertEqual(machine.execute("sleep 30", timeout=1)[0], 124)
    t.assertLess(time.monotonic() - started, 10)
    # a background process holding stdout does not hang the call
    started = time.monotonic()
    machine.succeed("sleep 30 &")
    t.assertLess(time.monotonic() - started, 10)
    machine.sleep(0)
    with t.assertRaises(RequestedAssertionFailed):
        machine.succeed("exit 1")
    with t.assertRaises(RequestedAssertionFailed):
        machine.fail("true")

with subtest("waiting for commands"):
    machine.succeed("(sleep 1; touch later) >/dev/null 2>&1 &")
    t.assertEqual(machine.wait_until_succeeds("test -e later && echo yes", timeout=20), "yes\n")
    machine.succeed("(sleep 1; rm later) >/dev/null 2>&1 &")
    machine.wait_until_fails("test -e later", timeout=20)
    machine.succeed("(sleep 1; touch file) >/dev/null 2>&1 &")
    machine.wait_for_file("file", timeout=20)
    with t.assertRaises(RequestedAssertionFailed):
        machine.wait_until_succeeds("false", timeout=1)
    calls = []
    retry(lambda last: calls.append(last) or len(calls) == 2, timeout_seconds=20)
    t.assertEqual(calls, [False, False])

with subtest("systemd"):
    t.assertEqual(machine.systemctl("is-active a.service"), (1, "inactive\n"))
    t.assertEqual(machine.start_job("a.service")[0], 0)
    machine.wait_for_unit("a.service", timeout=20)
    machine.require_unit_state("a.service")
    info = machine.get_unit_info("a.service")
    t.assertEqual(info["ActiveState"], "active")
    t.assertEqual(info["Description"], "a = b")
    t.assertEqual(machine.get_unit_property("a.service", "ActiveState"), "active")
    machine.stop_job("a.service")
    machine.require_unit_state("a.service", "inactive")
    with t.assertRaises(RequestedAssertionFailed):
        machine.require_unit_state("a.service")
    # inactive and no job pending: fails at once, not after the timeout
    started = time.monotonic()
    with t.assertRaisesRegex(RequestedAssertionFailed, "inactive and there are no pending jobs"):
        machine.wait_for_unit("a.service", timeout=60)
    machine.succeed("echo failed >$FAKE_SYSTEMD/b.service")
    with t.assertRaisesRegex(RequestedAssertionFailed, 'reached state "failed"'):
        machine.wait_for_unit("b.service", timeout=60)
    t.assertLess(time.monotonic() - started, 10)
    # inactive with a job pending: waits
    machine.succeed("touch $FAKE_SYSTEMD/c.job; (sleep 1.5; echo active >$FAKE_SYSTEMD/c.service; rm $FAKE_SYSTEMD/c.job) >/dev/null 2>&1 &")
    machine.wait_for_unit("c.service", timeout=20)

with subtest("ports and sockets"):
    machine.wait_for_open_port(int(os.environ["TCP_PORT"]), addr="127.0.0.1", timeout=20)
    machine.wait_for_closed_port(int(os.environ["CLOSED_PORT"]), addr="127.0.0.1", timeout=20)
    with t.assertRaises(RequestedAssertionFailed):
        machine.wait_for_open_port(int(os.environ["CLOSED_PORT"]), addr="127.0.0.1", timeout=1)
    machine.wait_for_open_unix_socket(os.environ["UNIX_SOCKET"], timeout=20)
    with t.assertRaises(RequestedAssertionFailed):
        machine.wait_for_open_unix_socket(os.environ["UNIX_SOCKET"] + ".nope", timeout=1)

with subtest("copies"):
    machine.copy_from_host(os.environ["HOST_FILE"], os.path.join(os.environ["GUEST"], "guest", "copied.txt"))
    # guest commands run in /tmp, as in a real guest: guest paths are absolute
    t.assertEqual(machine.succeed(f"cat {os.environ['GUEST']}/guest/copied.txt"), "host content\n")
    machine.copy_from_host_via_shell(os.environ["HOST_FILE"], os.path.join(os.environ["GUEST"], "guest", "sub", "copied2.txt"))
    t.assertEqual(machine.succeed(f"cat {os.environ['GUEST']}/guest/sub/copied2.txt"), "host content\n")
    machine.copy_from_machine(os.path.join(os.environ["GUEST"], "guest"))
    machine.copy_from_vm(os.path.join(os.environ["GUEST"], "guest", "copied.txt"), "into")

with subtest("console"):
    machine.succeed("echo console-marker-1 >&2; echo second-line >&2")
    machine.wait_for_console_text("console-marker-[0-9]", timeout=10)
    # consumed: the first marker does not match again, later lines do
    machine.wait_for_console_text("second", timeout=10)
    with t.assertRaises(RequestedAssertionFailed):
        machine.wait_for_console_text("console-marker-1", timeout=1)
    machine.send_console("typed\n")
    machine.wait_for_console_text("^typed$", timeout=10)
    t.assertIn("console-marker-1", machine.get_console_log())
    t.assertNotIn("\r", machine.get_console_log())
    # output that arrives while waiting
    import threading
    threading.Timer(1.0, lambda: machine.send_console("late-line\n")).start()
    machine.wait_for_console_text("late-line", timeout=10)

with subtest("monitor, keys and screen"):
    t.assertIn("running", machine.send_monitor_command("info status"))
    machine.send_key("ctrl-alt-delete")
    machine.send_chars("Ab", delay=None)
    machine.forward_port(18080, 80)
    machine.screenshot("shot")
    t.assertTrue(os.path.exists(os.path.join(driver.out_dir, "shot.png")))
    import shutil
    if shutil.which("tesseract"):
        t.assertIsInstance(machine.get_screen_text(), str)
        with t.assertRaises(RequestedAssertionFailed):
            machine.wait_for_text("no such text", timeout=1)

with subtest("network"):
    machine.block()
    machine.unblock()
    machine.block()
    vlan1.partition([machine], ["other"])
    vlan2.heal()
    t.assertEqual([v.nr for v in vlans], [1, 2])

with subtest("polling conditions"):
    checks = []
    @polling_condition(seconds_interval=0)
    def always():
        "always holds"
        checks.append(1)
        return True
    with always:
        machine.succeed("true")
    t.assertGreater(len(checks), 0)
    @polling_condition
    def never():
        return False
    from test_driver.polling_condition import PollingConditionError
    with t.assertRaises(PollingConditionError):
        with never:
            machine.succeed("true")
    machine.succeed("true")  # no longer checked

with subtest("log"):
    log.log("a plain line")
    with log.nested("a nested block"):
        log.info("inside")
    serial_stdout_off()
    machine.succeed("echo hidden-serial >&2")
    serial_stdout_on()
    machine.succeed("echo shown-serial >&2")

with subtest("life cycle"):
    machine.crash()
    t.assertFalse(machine.is_up())
    machine.start()
    t.assertTrue(machine.is_up())
    machine.reboot()
    machine.shutdown()
    machine.wait_for_shutdown()
    t.assertFalse(machine.is_up())
    # a command starts the machine again
    machine.succeed("true")
    t.assertTrue(machine.is_up())
    machine.shutdown()
    join_all()
`
	vl1, vl2 := pybridgetest.NewVLAN(1), pybridgetest.NewVLAN(2)
	e.vlans = append(e.vlans, vl1, vl2)
	err = e.run(t, script,
		"TCP_PORT="+strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port),
		"CLOSED_PORT="+strconv.Itoa(closedPort),
		"UNIX_SOCKET="+unixPath,
		"HOST_FILE="+hostFile,
		"GUEST="+e.dir,
	)
	if err != nil {
		t.Fatalf("script failed: %v", err)
	}
	m := e.machines[0]
	// The last ctrl-alt-delete is reboot(), which (as in nixpkgs) also
	// drops the shell connection.
	if diff := cmp.Diff([]string{"ctrl-alt-delete", "A", "b", "ctrl-alt-delete"}, m.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if m.Disconnects() != 1 || m.AllowReboot() {
		t.Errorf("reboot(): %d disconnects, allow_reboot %v; want 1, false", m.Disconnects(), m.AllowReboot())
	}
	if diff := cmp.Diff([][2]int{{18080, 80}}, m.Forwards()); diff != "" {
		t.Errorf("forwards (-want +got):\n%s", diff)
	}
	if m.LinksUp() {
		t.Error("links are up after block()")
	}
	if diff := cmp.Diff([][]string{{"machine"}, {"other"}}, vl1.Partition()); diff != "" {
		t.Errorf("vlan1 partition (-want +got):\n%s", diff)
	}
	for _, p := range []string{"guest/copied.txt", "guest/sub/copied2.txt", "into/copied.txt", "shot.png"} {
		if _, err := os.Stat(filepath.Join(e.out, p)); err != nil {
			t.Errorf("out dir: %v", err)
		}
	}
	log := e.log.String()
	for _, want := range []string{
		"machine: must succeed: echo hello",
		"(finished: subtest: commands, in ",
		"  a plain line",
		"machine # shown-serial",
		"Polling condition failed: never",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "# hidden-serial") {
		t.Error("serial output printed while serial_stdout_off")
	}
	j := e.rep.JUnit("api", "")
	var names []string
	for _, tc := range j.Suites[0].Testcases {
		names = append(names, tc.Name)
		if tc.Failure != nil {
			t.Errorf("test case %s failed: %s", tc.Name, tc.Failure.Data)
		}
	}
	want := []string{"commands", "waiting for commands", "systemd", "ports and sockets", "copies", "console",
		"monitor, keys and screen", "network", "polling conditions", "log", "life cycle"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("junit test cases (-want +got):\n%s", diff)
	}
}

func TestGlobals(t *testing.T) {
	e := newEnv(t, "server", "web-client", "9lives")
	e.vlans = append(e.vlans, pybridgetest.NewVLAN(3))
	script := `
t.assertEqual([m.name for m in machines], ["9lives", "server", "web-client"])
t.assertIs(server, machines[1])
t.assertIs(web_client, machines[2])
t.assertIs(_lives, machines[0])
t.assertNotIn("machine", globals())
t.assertEqual(vlan3.nr, 3)
for name in ["start_all", "join_all", "machines", "vlans", "driver", "log", "subtest", "retry",
             "polling_condition", "serial_stdout_on", "serial_stdout_off", "run_tests", "test_script",
             "t", "Machine", "os"]:
    t.assertIn(name, globals())
t.assertEqual(__name__, "__main__")
t.assertTrue(__file__.endswith("test.py"))
# nothing started by itself
t.assertFalse(any(m.is_up() for m in machines))
start_all()
t.assertTrue(all(m.is_up() for m in machines))
with t.assertRaises(ValueError):
    Machine("ghost", driver).succeed("true")
# a thread left running does not keep the run alive
import threading, time
threading.Thread(target=time.sleep, args=(1000,)).start()
`
	start := time.Now()
	if err := e.run(t, script); err != nil {
		t.Fatalf("script failed: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the run took %v", d)
	}
}

func TestFailure(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		line    int
		typ     string
		message string
		inLog   []string
	}{
		{
			name: "failed command",
			script: `start_all()
machine.succeed("true")

machine.succeed("echo about to fail; exit 42")
machine.succeed("echo never")
`,
			line:    4,
			typ:     "RequestedAssertionFailed",
			message: "command `echo about to fail; exit 42` failed (exit code 42)",
			inLog:   []string{"machine: output: about to fail", `!!!     machine.succeed("echo about to fail; exit 42")`},
		},
		{
			name: "assertion in a function in a subtest",
			script: `def check(x):
    t.assertEqual(x, 2)

with subtest("arith"):
    check(1 + 1)
    check(1 + 2)
`,
			line:    2,
			typ:     "RequestedAssertionFailed",
			message: "3 != 2",
			inLog:   []string{`Test "arith" failed with error: "3 != 2"`, "line 6, in <module>", "line 2, in check"},
		},
		{
			name:    "plain exception",
			script:  "x = {}\nx['missing']\n",
			line:    2,
			typ:     "KeyError",
			message: "'missing'",
		},
		{
			name:    "sys.exit with a status",
			script:  "import sys\nsys.exit(3)\n",
			line:    2,
			typ:     "RequestedAssertionFailed",
			message: "the test script exited with 3",
		},
		{
			name:    "failed wait",
			script:  "machine.wait_until_succeeds('false', timeout=1)\n",
			line:    1,
			typ:     "RequestedAssertionFailed",
			message: "action timed out after",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "machine")
			err := e.run(t, tt.script)
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *ScriptError", err)
			}
			if se.Line != tt.line || se.Type != tt.typ || !strings.HasPrefix(se.Message, tt.message) || !strings.HasSuffix(se.File, "test.py") {
				t.Errorf("got %s:%d %s: %s, want test.py:%d %s: %s", se.File, se.Line, se.Type, se.Message, tt.line, tt.typ, tt.message)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("test.py:%d", tt.line)) {
				t.Errorf("error %q does not name the script line", err)
			}
			log := e.log.String()
			for _, want := range append(tt.inLog, "!!! Traceback (most recent call last):") {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q", want)
				}
			}
			if strings.Contains(log, "distrotest_driver.py") || strings.Contains(e.stdout.String(), "distrotest_driver.py") {
				t.Error("the traceback shows frames of the shim")
			}
		})
	}
}

func TestSubtestFailureInJUnit(t *testing.T) {
	e := newEnv(t, "machine")
	err := e.run(t, `with subtest("good"):
    machine.succeed("true")
with subtest("bad"):
    machine.succeed("false")
`)
	if err == nil {
		t.Fatal("script passed")
	}
	j := e.rep.JUnit("s", err.Error())
	tcs := j.Suites[0].Testcases
	if len(tcs) != 2 || tcs[0].Failure != nil || tcs[1].Failure == nil {
		t.Fatalf("test cases: %+v", tcs)
	}
	if !strings.Contains(tcs[1].Failure.Data, `line 4, in <module>`) || !strings.Contains(tcs[1].Failure.Data, "exit code 1") {
		t.Errorf("failure data %q lacks the traceback", tcs[1].Failure.Data)
	}
}

func TestSyntaxError(t *testing.T) {
	e := newEnv(t, "machine")
	script := "# comment\nstart_all()\n\nmachine.succeed(\"true\"\n"
	cfg := e.config(t, script)
	check := func(what string, err error) {
		t.Helper()
		var se *ScriptError
		if !errors.As(err, &se) || se.Kind != "syntax" {
			t.Fatalf("%s: err = %v, want a syntax *ScriptError", what, err)
		}
		if se.Line != 4 || se.File != cfg.Script {
			t.Errorf("%s: at %s:%d, want %s:4", what, se.File, se.Line, cfg.Script)
		}
		if want := fmt.Sprintf("syntax error in %s:4: ", cfg.Script); !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %q does not start with %q", what, err, want)
		}
	}
	check("Check", Check(context.Background(), "", cfg.Script))
	check("Run", Run(context.Background(), cfg))
	if n := e.machines[0].Starts(); n != 0 {
		t.Errorf("machine started %d times", n)
	}
	if err := Check(context.Background(), "", filepath.Join(e.dir, "missing.py")); err == nil || !strings.Contains(err.Error(), "missing.py") {
		t.Errorf("Check of a missing file: %v", err)
	}
	good := filepath.Join(e.dir, "good.py")
	os.WriteFile(good, []byte("machine.succeed('true')\n"), 0o644)
	if err := Check(context.Background(), "", good); err != nil {
		t.Errorf("Check of a good script: %v", err)
	}
}

// TestCancel ends a hanging script through the context (the runner's global
// timeout or a signal) and checks that Python and what it started are gone.
func TestCancel(t *testing.T) {
	e := newEnv(t, "machine")
	pids := filepath.Join(e.dir, "pids")
	script := fmt.Sprintf(`import os, subprocess, time
child = subprocess.Popen(["sleep", "1000"])
with open(%q, "w") as f:
    f.write("%%d %%d\n" %% (os.getpid(), child.pid))
machine.start()
with subtest("hangs"):
    time.sleep(100000)
`, pids)
	cfg := e.config(t, script)
	cause := errors.New("global timeout of 2s reached")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 2*time.Second, cause)
	defer cancel()
	start := time.Now()
	err := Run(ctx, cfg)
	if !errors.Is(err, cause) {
		t.Fatalf("err = %v, want %v", err, cause)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned %v after the deadline", d)
	}
	data, rerr := os.ReadFile(pids)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		if alive(pid) {
			t.Errorf("process %d is still alive", pid)
		}
	}
	j := e.rep.JUnit("s", err.Error())
	if tc := j.Suites[0].Testcases[0]; tc.Name != "hangs" || tc.Failure == nil {
		t.Errorf("junit: %+v", tc)
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper counts as
// gone).
func alive(pid int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

func TestInteractive(t *testing.T) {
	e := newEnv(t, "machine")
	cfg := e.config(t, "raise Exception('the script does not run in interactive mode')\n")
	cfg.Interactive = true
	cfg.Stdin = strings.NewReader("t.assertFalse(machine.is_up())\nprint('got', machine.succeed('echo hi').strip())\n")
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("interactive run: %v\n%s", err, e.stdout.String())
	}
	if !strings.Contains(e.stdout.String(), "got hi") {
		t.Errorf("output lacks the command's result:\n%s", e.stdout.String())
	}
}

// TestInteractiveInterrupt presses Ctrl-C (SIGINT to Python) during a long
// command in the interactive shell: Python gets control back at once (the
// call is cancelled in Go too), and the shell goes on. The guest's command
// is not killed: the backdoor cannot reach a shell that is running a
// command, so the next command resynchronises once the interrupted one has
// ended in the guest (within backdoor.DefaultGrace).
func TestInteractiveInterrupt(t *testing.T) {
	e := newEnv(t, "machine")
	pidFile := filepath.Join(e.dir, "pid")
	cfg := e.config(t, "pass\n")
	cfg.Interactive = true
	cfg.Stdin = strings.NewReader(fmt.Sprintf(
		"import os; open(%q, 'w').write(str(os.getpid()))\nmachine.succeed('sleep 5')\nprint('after', machine.succeed('echo still-here').strip())\n", pidFile))
	out := &pybridgetest.Buffer{}
	cfg.Stdout, cfg.Stderr = out, out
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if data, err := os.ReadFile(pidFile); err == nil && len(data) > 0 {
				time.Sleep(500 * time.Millisecond) // let the next line start
				pid, _ := strconv.Atoi(string(data))
				syscall.Kill(pid, syscall.SIGINT)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("interactive run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "KeyboardInterrupt") || !strings.Contains(out.String(), "after still-here") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestPythonMissing(t *testing.T) {
	e := newEnv(t, "machine")
	cfg := e.config(t, "pass\n")
	cfg.Python = "/nonexistent/python3"
	err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "starting python") {
		t.Errorf("err = %v", err)
	}
}

func TestScriptErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  ScriptError
		want string
	}{
		{"exception", ScriptError{Kind: "exception", Type: "KeyError", Message: "'x'\nmore", File: "t.py", Line: 3, Source: "d['x']"},
			"test script failed at t.py:3 (d['x']): KeyError: 'x'"},
		{"no location", ScriptError{Kind: "exception", Type: "MachineError", Message: "died"},
			"test script failed: MachineError: died"},
		{"syntax", ScriptError{Kind: "syntax", Type: "SyntaxError", Message: "'(' was never closed", File: "t.py", Line: 4},
			"syntax error in t.py:4: '(' was never closed"},
		{"indentation", ScriptError{Kind: "syntax", Type: "IndentationError", Message: "unexpected indent", File: "t.py", Line: 1},
			"indentation error in t.py:1: unexpected indent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
