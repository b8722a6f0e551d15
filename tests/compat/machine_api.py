# Machine attributes, QMP and the message texts nixpkgs' own driver tests
# match on (nixos/tests/nixos-test-driver).
import datetime as dt
import re
import shutil
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def must_raise(regex):
    try:
        yield
    except Exception as e:
        if not re.search(regex, str(e)):
            raise Exception(f"{regex!r} not in {str(e)!r}") from e
    else:
        raise Exception(f"Expected an exception matching {regex!r}")


with subtest("attributes"):
    assert machine.booted
    assert machine.connected
    assert machine.is_up()
    assert isinstance(machine.out_dir, Path)
    (machine.out_dir / "compat.txt").write_text("written through out_dir\n")
    assert machine.state_dir.is_dir()
    assert isinstance(driver.out_dir, Path)

with subtest("messages"):
    with must_raise("Expected unit 'dt-missing.service' to to be in state 'active' but it is in state 'inactive'"):
        machine.require_unit_state("dt-missing.service")
    with must_raise("action timed out"):
        machine.wait_for_console_text("never-printed-on-the-console", timeout=dt.timedelta(seconds=2))
    r = machine.send_monitor_command("info status")
    assert "running" in r, r
    assert "(qemu)" in r, r
    # nixpkgs reads the HMP socket: readline's echo of the command comes first
    assert r.endswith("info status\x1b[K\r\nVM status: running\r\n(qemu) "), repr(r)
    # the console log as nixpkgs joins it: complete lines, "\r" and trailing blanks gone
    console = machine.get_console_log()
    assert console and "\r" not in console and not console.endswith("\n"), repr(console[-80:])
    assert all(line == line.rstrip() for line in console.split("\n"))
    # a property systemd does not know prints nothing: nixpkgs' assert fails
    try:
        machine.get_unit_property("dt-missing.service", "DtNoSuchProperty")
    except AssertionError as e:
        assert not isinstance(e, RequestedAssertionFailed), repr(e)
        assert '"dt-missing.service"produced invalid output' in str(e), str(e)
    else:
        raise Exception("get_unit_property on an unknown property did not fail")
    if shutil.which("tesseract") is None:
        with must_raise("OCR requested but enableOCR is false"):
            machine.wait_for_text("foobar", timeout=1)

with subtest("qmp"):
    assert machine.qmp_client.send("query-status")["return"]["running"]
    list(machine.qmp_client.events())
    machine.send_monitor_command("stop")
    machine.send_monitor_command("cont")
    ev = machine.wait_for_qmp_event(lambda e: e["event"] == "RESUME", timeout=dt.timedelta(minutes=2))
    assert "timestamp" in ev
    machine.succeed("true")

with subtest("copies go through /tmp/shared with cp -r semantics"):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "tree"
        src.mkdir()
        (src / "a.txt").write_text("a\n")
        machine.copy_from_host(str(src), "/root/fresh")
        assert machine.succeed("cat /root/fresh/a.txt") == "a\n"
        machine.succeed("mkdir -p /root/existing")
        machine.copy_from_host(str(src), "/root/existing")
        assert machine.succeed("cat /root/existing/tree/a.txt") == "a\n"
        machine.copy_from_host(str(src / "a.txt"), "relative-copy.txt")
        assert machine.succeed("cat /tmp/relative-copy.txt") == "a\n"
    machine.copy_from_machine("/root/fresh", "back")
    assert (machine.out_dir / "back" / "fresh" / "a.txt").read_text() == "a\n"
    machine.copy_from_vm("/tmp/relative-copy.txt")
    assert (machine.out_dir / "relative-copy.txt").read_text() == "a\n"
