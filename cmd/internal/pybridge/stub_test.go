package pybridge

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// stubCheck compares the shim's public classes and the script's globals
// with the stub: same methods, same parameter names, kinds and defaults.
const stubCheck = `
import ast, inspect, sys
sys.path.insert(0, sys.argv[1])
import distrotest_driver as d

stub = ast.parse(open(sys.argv[1] + "/distrotest_driver.pyi").read())

def stub_sig(fn):
    a = fn.args
    params = []
    pos = a.posonlyargs + a.args
    defaults = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    for p, dflt in zip(pos, defaults):
        params.append((p.arg, "pos", None if dflt is None else ast.literal_eval(dflt)))
    if a.vararg:
        params.append((a.vararg.arg, "var", None))
    for p, dflt in zip(a.kwonlyargs, a.kw_defaults):
        params.append((p.arg, "kw", None if dflt is None else ast.literal_eval(dflt)))
    if a.kwarg:
        params.append((a.kwarg.arg, "varkw", None))
    return params

def real_sig(fn):
    params = []
    for p in inspect.signature(fn).parameters.values():
        kind = {p.POSITIONAL_OR_KEYWORD: "pos", p.POSITIONAL_ONLY: "pos", p.VAR_POSITIONAL: "var", p.KEYWORD_ONLY: "kw", p.VAR_KEYWORD: "varkw"}.get(p.kind, "other")
        params.append((p.name, kind, None if p.default is p.empty else p.default))
    return params

errors = []
classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
for cname in ["Machine", "VLan", "Driver", "Logger"]:
    cls = getattr(d, cname)
    stubbed = {}
    for n in classes[cname].body:
        if isinstance(n, ast.FunctionDef):
            stubbed.setdefault(n.name, n)
    public = {k: v for k, v in vars(cls).items() if not k.startswith("_")}
    for name, member in public.items():
        if isinstance(member, property):
            if name not in stubbed:
                errors.append(f"{cname}.{name}: property missing from the stub")
            continue
        if not callable(member):
            continue
        if name not in stubbed:
            errors.append(f"{cname}.{name}: missing from the stub")
            continue
        want, got = real_sig(member), stub_sig(stubbed[name])
        if want != got:
            errors.append(f"{cname}.{name}: shim {want} != stub {got}")
    for name in stubbed:
        if name not in public:
            errors.append(f"{cname}.{name}: in the stub but not in the shim")

# Every global of a one-machine script with a VLAN is declared by the stub.
declared = set()
for n in stub.body:
    if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
        declared.add(n.name)
    elif isinstance(n, ast.AnnAssign):
        declared.add(n.target.id)
    elif isinstance(n, ast.Assign):
        declared.update(t.id for t in n.targets)
    elif isinstance(n, ast.Import):
        declared.update(a.asname or a.name for a in n.names)
drv = d.Driver(["machine"], [], "/out")
for name in drv.symbols():
    if not name.startswith("__") and name not in declared:
        errors.append(f"global {name}: missing from the stub")
for fn in ["start_all", "join_all", "test_script", "run_tests", "subtest", "serial_stdout_on", "serial_stdout_off"]:
    stubbed = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == fn)
    want = real_sig(getattr(drv, fn))
    if want != stub_sig(stubbed):
        errors.append(f"global {fn}: shim {want} != stub {stub_sig(stubbed)}")
if real_sig(d.retry) != stub_sig(next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == "retry")):
    errors.append("retry: signature differs")

print("\n".join(errors))
sys.exit(1 if errors else 0)
`

func TestStubMatchesShim(t *testing.T) {
	needPython(t)
	dir, err := writeShim()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	check := filepath.Join(t.TempDir(), "check.py")
	if err := os.WriteFile(check, []byte(stubCheck), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python(""), "-B", check, dir).CombinedOutput()
	if err != nil {
		t.Errorf("stub and shim differ (%v):\n%s", err, out)
	}
}

// TestNixpkgsSignatures pins the signatures the issue asks for to nixpkgs'
// names and defaults, so that existing test scripts keep working.
func TestNixpkgsSignatures(t *testing.T) {
	needPython(t)
	dir, err := writeShim()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	script := `
import inspect, sys
sys.path.insert(0, sys.argv[1])
import distrotest_driver as d
want = {
    "execute": "(self, command, check_return=True, check_output=True, timeout=900)",
    "succeed": "(self, *commands, timeout=None)",
    "fail": "(self, *commands, timeout=None)",
    "wait_until_succeeds": "(self, command, timeout=900)",
    "wait_until_fails": "(self, command, timeout=900)",
    "systemctl": "(self, q, user=None)",
    "wait_for_unit": "(self, unit, user=None, timeout=900)",
    "get_unit_info": "(self, unit, user=None)",
    "get_unit_property": "(self, unit, property, user=None)",
    "require_unit_state": "(self, unit, require_state='active')",
    "start_job": "(self, jobname, user=None)",
    "stop_job": "(self, jobname, user=None)",
    "wait_for_file": "(self, filename, timeout=900)",
    "wait_for_open_port": "(self, port, addr='localhost', timeout=900)",
    "wait_for_closed_port": "(self, port, addr='localhost', timeout=900)",
    "wait_for_open_unix_socket": "(self, addr, is_datagram=False, timeout=900)",
    "wait_for_console_text": "(self, regex, timeout=None)",
    "get_console_log": "(self)",
    "copy_from_host": "(self, source, target)",
    "copy_from_host_via_shell": "(self, source, target)",
    "copy_from_machine": "(self, source, target_dir='')",
    "copy_from_vm": "(self, source, target_dir='')",
    "forward_port": "(self, host_port=8080, guest_port=80)",
    "send_monitor_command": "(self, command)",
    "screenshot": "(self, filename)",
    "get_screen_text": "(self)",
    "wait_for_text": "(self, regex, timeout=900)",
    "send_key": "(self, key, delay=0.01, log=True)",
    "send_chars": "(self, chars, delay=0.01)",
    "send_console": "(self, chars)",
    "shell_interact": "(self, address=None)",
    "start": "(self, allow_reboot=False)",
    "shutdown": "(self)", "crash": "(self)", "reboot": "(self)", "is_up": "(self)",
    "wait_for_shutdown": "(self)", "block": "(self)", "unblock": "(self)",
    "sleep": "(self, duration=None, secs=None)",
    "wait_for_qmp_event": "(self, event_filter, timeout=600)",
    "log_serial": "(self, msg)",
}
bad = [f"{k}{inspect.signature(getattr(d.Machine, k))} != {v}" for k, v in want.items()
       if str(inspect.signature(getattr(d.Machine, k))) != v]
if str(inspect.signature(d.retry)) != "(fn, timeout_seconds=None, timeout=None)":
    bad.append("retry")
if str(inspect.signature(d.Driver.polling_condition)) != "(self, fun_=None, *, seconds_interval=None, interval=None, description=None)":
    bad.append("polling_condition")
if str(inspect.signature(d.QMPSession.send)) != "(self, cmd, args={})":
    bad.append("QMPSession.send")
print("\n".join(bad))
sys.exit(1 if bad else 0)
`
	check := filepath.Join(t.TempDir(), "sig.py")
	if err := os.WriteFile(check, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(python(""), "-B", check, dir).CombinedOutput(); err != nil {
		t.Errorf("signatures differ from nixpkgs' (%v):\n%s", err, out)
	}
}
