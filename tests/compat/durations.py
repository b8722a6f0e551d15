# Durations as post-#542374 nixpkgs scripts write them: datetime.timedelta for
# every timeout, sleep and interval, with nixpkgs' keyword names.
import datetime as dt
import time
from datetime import timedelta

machine.wait_for_unit("multi-user.target", timeout=dt.timedelta(minutes=15))

with subtest("command timeouts"):
    machine.succeed("true", timeout=timedelta(minutes=5))
    machine.fail("false", timeout=timedelta(minutes=5))
    status, _ = machine.execute("sleep 600", timeout=timedelta(seconds=2))
    assert status == 124, status
    assert machine.execute("echo ok", timeout=None) == (0, "ok\n")

with subtest("waits"):
    machine.succeed("(sleep 2; touch /tmp/soon) >/dev/null 2>&1 &")
    machine.wait_until_succeeds("test -e /tmp/soon", timeout=timedelta(minutes=5))
    machine.wait_for_file("/tmp/soon", timeout=timedelta(minutes=5))
    machine.wait_until_fails("test -e /tmp/never", timeout=timedelta(minutes=5))
    machine.wait_for_unit("distrotest-setup.service", timeout=timedelta(minutes=5))
    machine.wait_for_closed_port(8082, timeout=timedelta(minutes=5))
    machine.succeed("echo compat-console-marker >&2")
    machine.wait_for_console_text("compat-console-marker", timeout=timedelta(minutes=5))

with subtest("sleep"):
    started = time.monotonic()
    machine.sleep(timedelta(seconds=1))
    machine.sleep(duration=timedelta(milliseconds=500))
    machine.sleep(1)
    assert time.monotonic() - started >= 2.5

with subtest("retry"):
    calls = []

    def third_time(last_try):
        calls.append(last_try)
        return len(calls) >= 3

    retry(third_time, timeout=timedelta(minutes=2))
    assert calls == [False, False, False], calls
    retry(lambda _: True, timeout_seconds=60)
    retry(lambda _: True, timeout=60)

with subtest("polling_condition"):
    @polling_condition(interval=timedelta(seconds=1))
    def setup_is_active():
        "distrotest-setup.service is active"
        machine.succeed("systemctl is-active distrotest-setup.service")

    with setup_is_active:
        machine.succeed("true")
        machine.sleep(timedelta(seconds=2))
        machine.succeed("true")
    setup_is_active.wait(timeout=timedelta(minutes=2))
    setup_is_active.wait(timeout_seconds=timedelta(minutes=2))
