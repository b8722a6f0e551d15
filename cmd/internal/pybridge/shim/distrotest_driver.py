"""The test-script side of distrotest.

`distrotest run` starts CPython on this file with one end of a socket pair
on file descriptor 3. The script's globals (start_all, machine, subtest, ...)
follow the NixOS test driver's API; every operation on a machine, a VLAN or
the log is a JSON-lines request to the Go runner over that socket:

    -> {"id": 7, "method": "execute", "block": 3, "params": {...}}
    <- {"id": 7, "result": {...}}   or   {"id": 7, "error": {"kind": ..., "message": ...}}

"block" is the log block the calling thread is in, so that what Go logs for
the request nests under it. A request with id 0 is a notification: no reply.

Modes:
    distrotest_driver.py run      run or (interactively) serve the test script
    distrotest_driver.py check F  only compile F; print a SyntaxError, exit 2
"""

import base64
import code
import concurrent.futures
import contextlib
import datetime
import enum
import itertools
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
import unittest

PROTOCOL_VERSION = 1

__all__ = [
    "TestScriptError",
    "RequestedAssertionFailed",
    "MachineError",
    "PollingConditionError",
    "QMPAPIError",
    "QMPSession",
    "LogLevel",
    "Machine",
    "VLan",
    "Driver",
    "Logger",
    "retry",
]


class TestScriptError(Exception):
    """A failure of the test script (as opposed to a bug in the driver)."""


class RequestedAssertionFailed(TestScriptError):
    """A check the script asked for did not hold: succeed(), fail(),
    wait_until_succeeds(), t.assertEqual(), ..."""


class MachineError(Exception):
    """A machine could not do what was asked (it died, a command timed out
    on the host, a file could not be copied, ...)."""


class PollingConditionError(Exception):
    """A polling_condition stopped holding (as in nixpkgs, not an assertion
    failure: the report shows the full traceback)."""


class QMPAPIError(RuntimeError):
    """An error reply from QEMU's QMP (test_driver.machine.qmp.QMPAPIError):
    class_name, description and transaction_id as in nixpkgs."""

    def __init__(self, message):
        if not isinstance(message, dict) or "error" not in message:
            raise RuntimeError("Malformed QMP API error response")
        error = message["error"]
        try:
            self.class_name = error["class"]
            self.description = error["desc"]
        except (KeyError, TypeError):
            raise RuntimeError("Malformed QMP API error response") from None
        self.transaction_id = message.get("id")
        super().__init__(str(self))

    def __str__(self):
        return f"<QMP API error related to transaction {self.transaction_id} [{self.class_name}]: {self.description}>"


# --------------------------------------------------------------------------
# Durations: since nixpkgs #542374 every timeout, sleep and interval is a
# datetime.timedelta or a number of seconds.


def _seconds(duration, name="duration"):
    """duration (timedelta, int or float seconds, or None) as float seconds
    (None stays None). Bare numbers are accepted without nixpkgs'
    deprecation warning."""
    if duration is None:
        return None
    if isinstance(duration, datetime.timedelta):
        return duration.total_seconds()
    if isinstance(duration, bool):
        raise TypeError(f"{name}: expected a duration, got bool: {duration!r}")
    if isinstance(duration, (int, float)):
        return float(duration)
    raise TypeError(f"{name}: expected a timedelta, int, or float duration, got {type(duration).__name__}")


def _one_of(func, **given):
    """The single duration among nixpkgs' alternative keyword spellings
    (e.g. timeout= and timeout_seconds=), in seconds, or None."""
    named = {k: v for k, v in given.items() if v is not None}
    if len(named) > 1:
        raise TypeError(f"{func}(): pass only one of {', '.join(sorted(named))}")
    if not named:
        return None
    (key, value), = named.items()
    return _seconds(value, f"{func}() {key}")


def _fmt_seconds(secs):
    return str(int(secs)) if float(secs).is_integer() else f"{secs:g}"


class _RemoteUsageError(ValueError):
    pass


_ERROR_KINDS = {
    "machine": MachineError,
    "canceled": MachineError,
    "usage": _RemoteUsageError,
}


# --------------------------------------------------------------------------
# The connection to the Go runner.


class _Waiter:
    __slots__ = ("event", "reply")

    def __init__(self):
        self.event = threading.Event()
        self.reply = None


class _Bridge:
    """JSON-lines RPC client over a stream socket. Thread-safe: replies are
    matched to requests by id by a reader thread."""

    def __init__(self, fd):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fd)
        self._rfile = self._sock.makefile("rb")
        self._wlock = threading.Lock()
        self._plock = threading.Lock()
        self._pending = {}
        self._ids = itertools.count(1)
        self._local = threading.local()
        self._reader = threading.Thread(target=self._read, name="distrotest-rpc", daemon=True)
        self._reader.start()

    def _read(self):
        try:
            for raw in self._rfile:
                msg = json.loads(raw)
                with self._plock:
                    waiter = self._pending.pop(msg.get("id"), None)
                if waiter is not None:
                    waiter.reply = msg
                    waiter.event.set()
        except (OSError, ValueError):
            pass
        # The runner closed the connection: it is ending the run (timeout,
        # signal) or died. Nothing sensible is left to do.
        os._exit(3)

    # Log blocks are per thread: a stack of block ids, 0 being the root.
    def _stack(self):
        st = getattr(self._local, "stack", None)
        if st is None:
            st = self._local.stack = []
        return st

    def current_block(self):
        st = self._stack()
        return st[-1] if st else 0

    @contextlib.contextmanager
    def in_block(self, block):
        st = self._stack()
        st.append(block)
        try:
            yield
        finally:
            st.pop()

    def _send(self, msg):
        data = (json.dumps(msg, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")
        with self._wlock:
            self._sock.sendall(data)

    def notify(self, method, **params):
        self._send({"id": 0, "method": method, "block": self.current_block(), "params": params})

    def call(self, method, **params):
        rid = next(self._ids)
        waiter = _Waiter()
        with self._plock:
            self._pending[rid] = waiter
        self._send({"id": rid, "method": method, "block": self.current_block(), "params": params})
        try:
            waiter.event.wait()
        except BaseException:
            # Ctrl-C in the interactive shell: stop the operation in Go too.
            with self._plock:
                self._pending.pop(rid, None)
            self.notify("cancel", id=rid)
            raise
        reply = waiter.reply
        err = reply.get("error")
        if err is not None:
            raise _ERROR_KINDS.get(err.get("kind"), MachineError)(err.get("message", "unknown error"))
        return reply.get("result")


_bridge = None  # set by main()


def _rpc(method, **params):
    if _bridge is None:
        raise MachineError("not connected to the distrotest runner")
    return _bridge.call(method, **params)


# --------------------------------------------------------------------------
# Logging (the `log` global), with nixpkgs' logger method names.


class LogLevel(enum.IntEnum):
    """nixpkgs' test_driver.logger.LogLevel, for log.set_log_level."""

    DEBUG = 1
    INFO = 2
    WARNING = 3
    ERROR = 4


class Logger:
    """The run's log. Lines go to the Go runner, which prints them nested
    and coloured and keeps them for the JUnit report."""

    _level = LogLevel.INFO

    def _line(self, message, attributes, level):
        machine = (attributes or {}).get("machine", "")
        _rpc("log", machine=machine, message=str(message), level=level)

    def set_log_level(self, level):
        """Show debug/info/warning lines of the script from level up
        (a LogLevel, or its name: "debug", "info", "warning", "error")."""
        if isinstance(level, str):
            try:
                level = LogLevel[level.upper()]
            except KeyError:
                raise ValueError(f"unknown log level {level!r}: want debug, info, warning or error") from None
        self._level = LogLevel(level)

    def log(self, message, attributes=None):
        self._line(message, attributes, "info")

    def info(self, message, attributes=None):
        if self._level <= LogLevel.INFO:
            self._line(message, attributes, "info")

    def warning(self, message, attributes=None):
        if self._level <= LogLevel.WARNING:
            self._line(message, attributes, "warning")

    def error(self, message, attributes=None):
        """Log message at error level and end the script with status 1,
        as nixpkgs' log.error does."""
        self._line(message, attributes, "error")
        sys.exit(1)

    def debug(self, message, attributes=None):
        if self._level <= LogLevel.DEBUG:
            self._line(message, attributes, "debug")

    def log_test_error(self, message, *args, **kwargs):
        _rpc("log_error", message=str(message))

    def log_serial(self, message, machine):
        _rpc("log_serial", machine=machine, message=str(message))

    def print_serial_logs(self, enable):
        _rpc("serial", on=bool(enable))

    @contextlib.contextmanager
    def nested(self, message, attributes=None):
        machine = (attributes or {}).get("machine", "")
        block = _rpc("nested_begin", machine=machine, message=str(message))["block"]
        try:
            with _bridge.in_block(block):
                yield
        finally:
            _rpc("block_end", block=block, failure="")

    @contextlib.contextmanager
    def subtest(self, name, attributes=None):
        block = _rpc("subtest_begin", name=str(name))["block"]
        failure = ""
        try:
            with _bridge.in_block(block):
                try:
                    yield
                except BaseException as e:
                    failure = "\n".join(_script_traceback(e))
                    self.log_test_error(f'Test "{name}" failed with error: "{e}"')
                    raise
        finally:
            _rpc("block_end", block=block, failure=failure)


log = Logger()


# --------------------------------------------------------------------------
# retry and polling conditions.


def retry(fn, timeout_seconds=None, timeout=None):
    """Call fn(False) once a second until it returns a true value; after the
    timeout (timeout_seconds= or timeout=, a timedelta or seconds; default
    15 minutes) call fn(True) a last time and fail if it is still false."""
    limit = _one_of("retry", timeout_seconds=timeout_seconds, timeout=timeout)
    if limit is None:
        limit = 900.0
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if fn(False):
            return
        time.sleep(1)
    if not fn(True):
        elapsed = time.monotonic() - start
        raise RequestedAssertionFailed(
            f"action timed out after {elapsed:.2f} seconds (timeout={_fmt_seconds(limit)})"
        )


class _PollingCondition:
    def __init__(self, condition, seconds_interval=2.0, description=None):
        self.condition = condition
        self.seconds_interval = seconds_interval
        if description is not None:
            self.description = str(description)
        elif condition.__doc__:
            self.description = condition.__doc__
        else:
            self.description = getattr(condition, "__name__", "condition")
        self.last_called = None
        self.depth = 0  # > 0 while the condition itself runs

    def _due(self):
        return self.last_called is None or time.monotonic() - self.last_called > self.seconds_interval

    def check(self, force=False):
        if not force and (self.depth > 0 or not self._due()):
            return True
        self.depth += 1
        try:
            with log.nested(f"Checking polling condition {self.description!r}"):
                try:
                    ok = self.condition()
                    ok = ok is None or bool(ok)
                except Exception as e:
                    log.info(f"Polling condition raised {type(e).__name__}: {e}")
                    ok = False
                log.info(f"Polling condition {'succeeded' if ok else 'failed'}: {self.description}")
                return ok
        finally:
            self.depth -= 1
            self.last_called = time.monotonic()

    def maybe_raise(self):
        if not self.check():
            raise PollingConditionError(f"Polling condition failed: {self.description}")


# --------------------------------------------------------------------------
# Machines.


def _q(arg):
    return shlex.quote(str(arg))


def _hmp_echo(command):
    """What QEMU's monitor readline echoes when the line command is written
    to its socket in one piece, as nixpkgs' driver writes it: after each
    typed character the line so far, erase-to-end and the cursor moved back
    to its start; after the last, the line and CR LF (recorded from QEMU
    7.2's HMP socket; the output that follows is the same text QMP's
    human-monitor-command returns)."""
    if not command or not all(" " <= c <= "~" for c in command):
        return command + "\r\n"
    echo = [command[:k] + "\x1b[K" + "\x1b[D" * k for k in range(1, len(command))]
    return "".join(echo) + command + "\x1b[K\r\n"


class QMPSession:
    """The machine's QMP connection as nixpkgs' test_driver.machine.qmp
    QMPSession: send() runs a command and returns QEMU's reply message,
    wait_for_event() and events() read the events QEMU sent since the
    machine started. QEMU's own connection stays with the runner; this is a
    view of it."""

    def __init__(self, machine):
        self._machine = machine

    def send(self, cmd, args={}):  # noqa: B006 - nixpkgs' signature
        """Run QMP command cmd with args; returns {"return": ...}. An error
        reply raises QMPAPIError."""
        res = self._machine._call("qmp", command=str(cmd), arguments=dict(args) if args else None)
        if "error" in res:
            raise QMPAPIError(res)
        return res

    def wait_for_event(self, timeout=datetime.timedelta(seconds=10)):
        """The next QMP event (a dict with "event", "data", "timestamp");
        raises TimeoutError when none comes within timeout."""
        secs = _seconds(timeout, "wait_for_event() timeout")
        ev = self._machine._call("qmp_event", wait=secs)["event"]
        if ev is None:
            raise TimeoutError(f"no QMP event from {self._machine.name} within {_fmt_seconds(secs)} seconds")
        return ev

    def events(self, timeout=datetime.timedelta(seconds=10)):
        """The QMP events already received, without waiting."""
        while True:
            ev = self._machine._call("qmp_event", wait=0.0)["event"]
            if ev is None:
                return
            yield ev


class Machine:
    """A machine of the test, with the NixOS test driver's methods."""

    def __init__(self, name, driver, info=None):
        info = info or {}
        self.name = name
        self._driver = driver
        self._console_cursor = None
        self._console_pending = []
        self._console_lock = threading.Lock()
        self.state_dir = pathlib.Path(info["state_dir"]) if info.get("state_dir") else None
        self.shared_dir = pathlib.Path(info["shared_dir"]) if info.get("shared_dir") else None
        self.qmp_client = QMPSession(self)

    def __repr__(self):
        return f"<Machine '{self.name}'>"

    @property
    def out_dir(self):
        """The run's out dir (pathlib.Path)."""
        return self._driver.out_dir

    @property
    def booted(self):
        """Whether the machine's QEMU runs (nixpkgs: booted)."""
        return bool(self._call("state")["booted"])

    @property
    def connected(self):
        """Whether the guest's shell answered since the last (re)boot."""
        return bool(self._call("state")["connected"])

    def _call(self, method, **params):
        return _rpc(method, machine=self.name, **params)

    def run_callbacks(self):
        self._driver.check_polling_conditions()

    # -- logging

    def log(self, msg):
        """Log a line prefixed with the machine's name."""
        log.log(msg, {"machine": self.name})

    def log_serial(self, msg):
        """Log msg as a serial console line of this machine."""
        log.log_serial(msg, self.name)

    def nested(self, msg, attrs=None):
        """A nested log block prefixed with the machine's name."""
        a = {"machine": self.name}
        a.update(attrs or {})
        return log.nested(msg, a)

    # -- life cycle

    def is_up(self):
        """Whether the machine runs and its shell answered."""
        return bool(self._call("is_up")["up"])

    def start(self, allow_reboot=False):
        """Start the machine; does not wait for it to boot. Unless
        allow_reboot, a reboot of the guest ends its QEMU (as in nixpkgs);
        the next command then boots it again from the same disk."""
        self._call("start", allow_reboot=bool(allow_reboot))

    def wait_for_shell(self):
        """Start the machine if needed and wait for its root shell."""
        with self.nested("waiting for the VM to finish booting"):
            self._call("wait_for_shell")

    connect = wait_for_shell

    def shutdown(self):
        """Power the machine off through its shell and wait for it to stop."""
        self._call("shutdown")

    def crash(self):
        """Stop the machine at once, like a power failure."""
        self._call("crash")

    def reboot(self):
        """Press Ctrl-Alt-Delete and return at once, as nixpkgs does; the
        next command waits for the shell of the next boot."""
        self.send_key("ctrl-alt-delete")
        self._call("disconnect")

    def wait_for_shutdown(self):
        """Wait until the machine has powered off (does not ask it to)."""
        with self.nested("waiting for the VM to power off"):
            self._call("wait_for_shutdown")

    # -- commands

    def execute(self, command, check_return=True, check_output=True, timeout=900):
        """Run a shell command as root (bash, `set -euo pipefail`, in /tmp)
        and return (status, stdout). With check_output=False the command is
        sent and (-2, "") returned at once; with check_return=False the
        status is -1. timeout is a timedelta or seconds (None: no limit); a
        command that exceeds it is killed and returns status 124."""
        self.run_callbacks()
        res = self._call(
            "execute",
            command=str(command),
            timeout=_seconds(timeout, "execute() timeout"),
            wait=bool(check_output),
        )
        if not check_output:
            return (-2, "")
        if not check_return:
            return (-1, res["output"])
        return (res["status"], res["output"])

    def succeed(self, *commands, timeout=None):
        """Run each command; fail unless it exits 0. Returns the
        concatenated stdout."""
        output = ""
        for command in commands:
            with self.nested(f"must succeed: {command}"):
                status, out = self.execute(command, timeout=timeout)
                if status != 0:
                    self.log(f"output: {out}")
                    raise RequestedAssertionFailed(f"command `{command}` failed (exit code {status})")
                output += out
        return output

    def fail(self, *commands, timeout=None):
        """Run each command; fail if it exits 0. Returns the stdout."""
        output = ""
        for command in commands:
            with self.nested(f"must fail: {command}"):
                status, out = self.execute(command, timeout=timeout)
                if status == 0:
                    raise RequestedAssertionFailed(f"command `{command}` unexpectedly succeeded")
                output += out
        return output

    def wait_until_succeeds(self, command, timeout=900):
        """Repeat command once a second until it exits 0; return its stdout."""
        output = ""

        def ok(_last):
            nonlocal output
            status, output = self.execute(command, timeout=timeout)
            return status == 0

        with self.nested(f"waiting for success: {command}"):
            retry(ok, timeout)
        return output

    def wait_until_fails(self, command, timeout=900):
        """Repeat command once a second until it exits non-zero."""
        output = ""

        def failed(_last):
            nonlocal output
            status, output = self.execute(command, timeout=timeout)
            return status != 0

        with self.nested(f"waiting for failure: {command}"):
            retry(failed, timeout)
        return output

    def sleep(self, duration=None, secs=None):
        """Sleep for duration (a timedelta or seconds; secs= is nixpkgs'
        older spelling) of guest time."""
        total = _one_of("sleep", duration=duration, secs=secs)
        if total is None:
            raise TypeError("sleep() needs a duration")
        self.succeed(f"sleep {_fmt_seconds(total)}")

    # -- systemd

    def systemctl(self, q, user=None):
        """Run `systemctl q` (as `systemctl --user` of user when given);
        returns (status, stdout)."""
        if user is None:
            return self.execute(f"systemctl {q}")
        inner = f"XDG_RUNTIME_DIR=/run/user/$(id -u) systemctl --user {q}"
        return self.execute(f"su -l {_q(user)} --shell /bin/sh -c {_q(inner)}")

    def get_unit_info(self, unit, user=None):
        """All properties of unit (`systemctl show`) as a dict."""
        status, out = self.systemctl(f"--no-pager show {_q(unit)}", user)
        if status != 0:
            who = "" if user is None else f' under user "{user}"'
            raise RequestedAssertionFailed(
                f'retrieving systemctl info for unit "{unit}"{who} failed with exit code {status}'
            )
        info = {}
        for line in out.split("\n"):
            key, sep, value = line.partition("=")
            if sep and key:
                info[key] = value
        return info

    def get_unit_property(self, unit, property, user=None):
        """One property of unit, as a string."""
        status, out = self.systemctl(f"--no-pager show {_q(unit)} --property={_q(property)}", user)
        if status != 0:
            who = "" if user is None else f' under user "{user}"'
            raise RequestedAssertionFailed(
                f'retrieving systemctl property "{property}" for unit "{unit}"{who} failed with exit code {status}'
            )
        # nixpkgs asserts here (an AssertionError, reported as a crash of
        # the script rather than a failed check), with this text (sic: no
        # space before "produced").
        invalid_output_message = f'systemctl show --property "{property}" "{unit}"produced invalid output: {out}'
        match = re.match(r"^([^=]+)=(.*)$", out)
        if match is None or match[1] != property:
            raise AssertionError(invalid_output_message)
        return match[2]

    def require_unit_state(self, unit, require_state="active"):
        """Fail unless unit's ActiveState is require_state."""
        with self.nested(f"checking if unit '{unit}' has reached state '{require_state}'"):
            state = self.get_unit_info(unit)["ActiveState"]
            if state != require_state:
                raise RequestedAssertionFailed(
                    f"Expected unit '{unit}' to to be in state '{require_state}' but it is in state '{state}'"
                )

    def wait_for_unit(self, unit, user=None, timeout=900):
        """Wait until unit is active. Fails at once when it failed, or when
        it is inactive and systemd has no job pending that could start it."""

        def active(_last):
            state = self.get_unit_property(unit, "ActiveState", user)
            if state == "failed":
                raise RequestedAssertionFailed(f'unit "{unit}" reached state "{state}"')
            if state == "inactive":
                _, jobs = self.systemctl("list-jobs --full 2>&1", user)
                if "No jobs" in jobs and self.get_unit_info(unit, user).get("ActiveState") == "inactive":
                    raise RequestedAssertionFailed(f'unit "{unit}" is inactive and there are no pending jobs')
            return state == "active"

        suffix = "" if user is None else f" with user {user}"
        with self.nested(f"waiting for unit {unit}{suffix}"):
            retry(active, timeout)

    def start_job(self, jobname, user=None):
        """`systemctl start jobname`; returns (status, stdout)."""
        return self.systemctl(f"start {jobname}", user)

    def stop_job(self, jobname, user=None):
        """`systemctl stop jobname`; returns (status, stdout)."""
        return self.systemctl(f"stop {jobname}", user)

    # -- waiting for things in the guest

    def wait_for_file(self, filename, timeout=900):
        """Wait until filename exists in the guest."""

        def exists(_last):
            status, _ = self.execute(f"test -e {filename}")
            return status == 0

        with self.nested(f"waiting for file '{filename}'"):
            retry(exists, timeout)

    def _tcp_probe(self, port, addr):
        # bash's /dev/tcp: no netcat needed in the guest.
        script = 'exec 3<>"/dev/tcp/$0/$1"'
        status, _ = self.execute(f"timeout 5 bash -c {_q(script)} {_q(addr)} {_q(port)} 2>/dev/null")
        return status == 0

    def wait_for_open_port(self, port, addr="localhost", timeout=900):
        """Wait until something listens on TCP port at addr in the guest."""
        with self.nested(f"waiting for TCP port {port} on {addr}"):
            retry(lambda _last: self._tcp_probe(port, addr), timeout)

    def wait_for_closed_port(self, port, addr="localhost", timeout=900):
        """Wait until nothing listens on TCP port at addr in the guest."""
        with self.nested(f"waiting for TCP port {port} on {addr} to be closed"):
            retry(lambda _last: not self._tcp_probe(port, addr), timeout)

    def wait_for_open_unix_socket(self, addr, is_datagram=False, timeout=900):
        """Wait until a process listens on the unix socket addr (a bound
        datagram socket with is_datagram=True); read from /proc/net/unix."""
        kind = "0002" if is_datagram else "0001"
        prog = (
            "BEGIN { found = 1 } "
            "$5 == kind && (kind != \"0001\" || $4 == \"00010000\") && substr($0, index($0, $8)) == path { found = 0 } "
            "END { exit found }"
        )
        cmd = f"awk -v kind={kind} -v path={_q(addr)} {_q(prog)} /proc/net/unix"

        def listening(_last):
            status, _ = self.execute(cmd)
            return status == 0

        what = "datagram" if is_datagram else "stream"
        with self.nested(f"waiting for UNIX-domain {what} on '{addr}'"):
            retry(listening, timeout)

    # -- the serial console

    def _read_console(self, wait):
        res = self._call("console_read", cursor=self._console_cursor, wait=float(wait))
        if res["reset"]:
            self._console_pending = []
        self._console_cursor = res["cursor"]
        if res["text"]:
            self._console_pending.extend(res["text"].replace("\r", "").split("\n")[:-1])

    def wait_for_console_text(self, regex, timeout=None):
        """Wait until regex (Python syntax) matches the serial console output
        not consumed by earlier calls; the lines up to the match are consumed.
        timeout is a timedelta or seconds (None: no limit but the run's)."""
        pattern = re.compile(regex)
        timeout = _seconds(timeout, "wait_for_console_text() timeout")
        with self.nested(f"waiting for {regex} to appear on console"):
            with self._console_lock:
                start = time.monotonic()
                deadline = None if timeout is None else start + timeout
                lines = []  # consumed by this call
                wait = 0.0
                while True:
                    self._read_console(wait)
                    if self._console_pending:
                        lines.extend(self._console_pending)
                        self._console_pending = []
                        text = "\n".join(lines) + "\n"
                        m = pattern.search(text)
                        if m is not None:
                            # Keep the lines after the one holding the match's end.
                            last = text.count("\n", 0, max(m.end() - 1, m.start()))
                            self._console_pending = lines[last + 1:]
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        # nixpkgs goes through retry() here: same message.
                        raise RequestedAssertionFailed(
                            f"action timed out after {time.monotonic() - start:.2f} seconds (timeout={_fmt_seconds(timeout)})"
                        )
                    wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))

    def get_console_log(self):
        """The machine's serial console since it was last started, as
        nixpkgs gives it: the complete lines, each without "\r" and
        trailing white space, joined with "\n" (a line still being
        printed is not in it yet)."""
        lines = self._call("console_log")["text"].split("\n")[:-1]
        return "\n".join(line.replace("\r", "").rstrip() for line in lines)

    def send_console(self, chars):
        """Type chars on the serial console (e.g. "\\n\\nsystemctl default\\n")."""
        self._call("send_console", chars=str(chars))

    def console_interact(self):
        """Forward what you type to the serial console until Ctrl-D."""
        self.log("Terminal is ready (there is no prompt), Ctrl-D to leave:")
        while True:
            try:
                ch = sys.stdin.read(1)
            except KeyboardInterrupt:
                break
            if ch == "":
                break
            self.send_console(ch)

    def shell_interact(self, address=None):
        """A line-by-line root shell on the machine until Ctrl-D (each line
        runs like execute()); for developing tests, not in tests."""
        if address is not None:
            raise MachineError("shell_interact(address=...) is not supported by distrotest")
        self.log("Terminal is ready (one command per line, Ctrl-D to leave):")
        while True:
            try:
                line = input("$ ")
            except EOFError:
                print()  # Ctrl-D: end the prompt's line, as a shell does
                break
            except KeyboardInterrupt:
                print()
                continue
            if not line.strip():
                continue
            status, out = self.execute(line, timeout=None)
            sys.stdout.write(out)
            if out and not out.endswith("\n"):
                sys.stdout.write("\n")
            if status != 0:
                print(f"(exit status {status})")

    # -- files

    def copy_from_host(self, source, target):
        """Copy the host file or directory source to target in the guest.
        As in nixpkgs, through /tmp/shared and `cp -r` (a target that is an
        existing directory receives the copy inside it; a relative target
        is relative to /tmp). Without /tmp/shared the runner sends a tar
        over the shell (target must then be absolute)."""
        with self.nested(f"copying {source} from the host to {target}"):
            if self.shared_dir is None:
                self._call("copy_from_host", source=os.path.abspath(str(source)), target=str(target))
                return
            src = pathlib.Path(source)
            with tempfile.TemporaryDirectory(dir=self.shared_dir) as tmp:
                staged = pathlib.Path(tmp) / src.name
                if src.is_dir():
                    shutil.copytree(src, staged, symlinks=True)
                else:
                    shutil.copy(src, staged)
                in_guest = f"/tmp/shared/{pathlib.Path(tmp).name}/{src.name}"
                parent = os.path.dirname(str(target).rstrip("/")) or "."
                self.succeed(f"mkdir -p {_q(parent)} && cp -r {_q(in_guest)} {_q(target)}")

    def copy_from_host_via_shell(self, source, target):
        """Copy a host file into the guest through the shell (base64)."""
        with open(source, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        self.succeed(
            f"mkdir -p \"$(dirname {_q(target)})\"",
            f"printf %s {_q(data)} | base64 -d > {_q(target)}",
        )

    def copy_from_machine(self, source, target_dir=""):
        """Copy the guest file or directory source into the out dir, as
        out_dir/target_dir/<name of source>. As in nixpkgs, through
        /tmp/shared (the copy fails if that name exists already); without
        it the runner sends a tar over the shell and merges into it."""
        dest = os.path.join(self.out_dir, str(target_dir))
        with self.nested(f"copying {source} from the machine to {dest}"):
            if self.shared_dir is None:
                self._call("copy_from_machine", source=str(source), target_dir=dest)
                return
            name = os.path.basename(str(source).rstrip("/"))
            with tempfile.TemporaryDirectory(dir=self.shared_dir) as tmp:
                in_guest = f"/tmp/shared/{pathlib.Path(tmp).name}/"
                self.succeed(f"cp -r {_q(source)} {_q(in_guest)}")
                staged = pathlib.Path(tmp) / name
                final = pathlib.Path(dest) / name
                final.parent.mkdir(parents=True, exist_ok=True)
                if staged.is_dir():
                    shutil.copytree(staged, final, symlinks=True)
                else:
                    shutil.copy(staged, final)

    def copy_from_vm(self, source, target_dir=""):
        """Deprecated name of copy_from_machine."""
        self.copy_from_machine(source, target_dir)

    # -- monitor, keyboard, screen

    def send_monitor_command(self, command):
        """Run a QEMU human-monitor command and return the monitor's
        transcript as nixpkgs returns it: the echo of the typed command, its
        output and the prompt "(qemu) "."""
        self.run_callbacks()
        command = str(command)
        output = self._call("send_monitor_command", command=command)["output"]
        return _hmp_echo(command) + output + "(qemu) "

    def wait_for_qmp_event(self, event_filter, timeout=60 * 10):
        """Wait for a QMP event (a dict: "event", "data", "timestamp") for
        which event_filter returns true and return it; events that do not
        match are consumed. timeout: a timedelta or seconds (default 10
        minutes); TimeoutError after it."""
        limit = _seconds(timeout, "wait_for_qmp_event() timeout")
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            ev = self._call("qmp_event", wait=max(0.0, left))["event"] if left > 0 else None
            if ev is not None and event_filter(ev):
                return ev
            if ev is None and time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {_fmt_seconds(limit)} seconds waiting for a QMP event on {self.name}")

    def send_key(self, key, delay=0.01, log=True):
        """Press a key (QEMU sendkey syntax, e.g. "ctrl-alt-delete", or a
        single character)."""
        ctx = self.nested(f"sending key {key!r}") if log else contextlib.nullcontext()
        with ctx:
            self._call("send_key", key=str(key))
            if delay is not None:
                time.sleep(delay)

    def send_chars(self, chars, delay=0.01):
        """Type chars on the keyboard, one key at a time."""
        with self.nested(f"sending keys {chars!r}"):
            for ch in chars:
                self.send_key(ch, delay, log=False)

    def forward_port(self, host_port=8080, guest_port=80):
        """Forward TCP host_port on the host to guest_port in the guest."""
        self._call("forward_port", host_port=int(host_port), guest_port=int(guest_port))

    def screenshot(self, filename):
        """Save the screen as PNG; a name without '/' goes to the out dir,
        a name without '.' gets '.png'."""
        filename = str(filename)
        if "." not in filename:
            filename += ".png"
        if "/" not in filename:
            filename = os.path.join(self.out_dir, filename)
        with self.nested(f"making screenshot {filename}"):
            self._call("screenshot", path=os.path.abspath(filename))

    def _ocr(self):
        if shutil.which("tesseract") is None:
            # nixpkgs' text (its enableOCR puts tesseract on PATH); tests match it.
            raise MachineError("OCR requested but enableOCR is false")
        with tempfile.TemporaryDirectory(prefix="distrotest-ocr-") as d:
            png = os.path.join(d, "screen.png")
            self._call("screenshot", path=png)
            proc = subprocess.run(
                ["tesseract", png, "-", "--psm", "11", "-c", "debug_file=/dev/null"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            if proc.returncode != 0:
                raise MachineError(
                    f"OCR failed with exit code {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
                )
            return proc.stdout.decode("utf-8", errors="replace")

    def get_screen_text_variants(self):
        """OCR interpretations of the screen (distrotest returns one)."""
        return [self._ocr()]

    def get_screen_text(self):
        """The text on the screen, by OCR (tesseract)."""
        return self._ocr()

    def wait_for_text(self, regex, timeout=900):
        """Wait until regex matches the screen's text (OCR)."""

        def matches(last):
            texts = self.get_screen_text_variants()
            if any(re.search(regex, t) for t in texts):
                return True
            if last:
                self.log(f"Last OCR attempt failed. Text was: {texts}")
            return False

        with self.nested(f"waiting for {regex} to appear on screen"):
            retry(matches, timeout)

    # -- virtual terminals and X11, through the shell

    def get_tty_text(self, tty):
        """The text on virtual terminal tty."""
        _, out = self.execute(f"fold -w$(stty -F /dev/tty{tty} size | awk '{{print $2}}') /dev/vcs{tty}")
        return out

    def wait_until_tty_matches(self, tty, regexp, timeout=900):
        """Wait until the text on virtual terminal tty matches regexp."""
        pattern = re.compile(regexp)

        def matches(last):
            text = self.get_tty_text(tty)
            if last:
                self.log(f"Last chance to match /{regexp}/ on TTY{tty}, which currently contains: {text}")
            return pattern.search(text) is not None

        with self.nested(f"waiting for {regexp} to appear on tty {tty}"):
            retry(matches, timeout)

    def dump_tty_contents(self, tty):
        """Copy the text of virtual terminal tty into the journal."""
        self.execute(f"fold -w 80 /dev/vcs{tty} | systemd-cat")

    def wait_for_x(self, timeout=900):
        """Wait until the X server accepts connections."""

        def ready(_last):
            status, _ = self.execute(
                "journalctl -b SYSLOG_IDENTIFIER=systemd | grep -q 'Reached target Current graphical'"
            )
            return status == 0 and self.execute("[ -e /tmp/.X11-unix/X0 ]")[0] == 0

        with self.nested("waiting for the X11 server"):
            retry(ready, timeout)

    def get_window_names(self):
        """Names of the X11 windows."""
        return self.succeed(
            r"xwininfo -root -tree | sed 's/.*0x[0-9a-f]* \"\([^\"]*\)\".*/\1/; t; d'"
        ).splitlines()

    def wait_for_window(self, regexp, timeout=900):
        """Wait until an X11 window whose name matches regexp appears."""
        pattern = re.compile(regexp)

        def visible(last):
            names = self.get_window_names()
            if last:
                self.log(f"Last chance to match {regexp} on the window list, which currently contains: {', '.join(names)}")
            return any(pattern.search(n) for n in names)

        with self.nested("waiting for a window to appear"):
            retry(visible, timeout)

    # -- network

    def block(self):
        """Unplug the machine's VLAN network cards (the test's own network
        stays up)."""
        with self.nested("unplugging the VLAN network cards"):
            self._call("set_links", up=False)

    def unblock(self):
        """Plug the VLAN network cards back in."""
        with self.nested("plugging the VLAN network cards back in"):
            self._call("set_links", up=True)


BaseMachine = Machine
QemuMachine = Machine


class NspawnMachine(Machine):
    """nixpkgs' container machine class, for annotations and isinstance
    checks only: distrotest runs no systemd-nspawn containers."""


class VLan:
    """A VLAN of the test; machines on it reach each other as
    192.168.<nr>.<n> (n: the machine's number, by name from 1)."""

    def __init__(self, nr):
        self.nr = nr

    def __repr__(self):
        return f"<VLan Nr. {self.nr}>"

    def partition(self, *groups):
        """Split the VLAN: frames pass only within a group. Groups are
        lists of machines (or machine names); a machine in no group is
        cut off."""
        names = [[m.name if isinstance(m, Machine) else str(m) for m in g] for g in groups]
        with log.nested(f"partitioning vlan{self.nr}: {names}"):
            _rpc("partition", vlan=self.nr, groups=names)

    def heal(self):
        """Undo partition()."""
        with log.nested(f"healing vlan{self.nr}"):
            _rpc("heal", vlan=self.nr)


# --------------------------------------------------------------------------
# The driver and the script's globals.


class _AssertionTester(unittest.TestCase):
    """unittest assertions for test scripts (`t.assertEqual(...)`); a
    failure raises RequestedAssertionFailed."""

    failureException = RequestedAssertionFailed

    def runTest(self):  # pragma: no cover - never run as a test
        pass


def _pythonize_name(name):
    return re.sub(r"^[^A-Za-z_]|[^A-Za-z0-9_]", "_", name)


class Driver:
    """The test run: machines, VLANs and the script."""

    def __init__(self, machine_names, vlan_ids, out_dir, script_path=None, code_obj=None, machine_info=None):
        self.out_dir = pathlib.Path(out_dir)
        self.script_path = script_path
        self._code = code_obj
        info = machine_info or {}
        self.machines = [Machine(n, self, info.get(n)) for n in sorted(machine_names)]
        self.vlans = [VLan(v) for v in sorted(vlan_ids)]
        self.polling_conditions = []
        self._globals = None

    # nixpkgs compatibility
    @property
    def machines_qemu(self):
        return self.machines

    @property
    def machines_nspawn(self):
        """Always empty: distrotest runs no containers."""
        return []

    def create_machine(
        self,
        start_command=None,
        *,
        name=None,
        keep_machine_state=False,
        image=None,
        vlans=None,
        memory_size=None,
        cpus=None,
    ):
        """Create a machine that is not in the test's nodes and return it,
        not started (start() boots it), as nixpkgs' create_machine does.
        It boots from a prepared image: `image` is a machine of the test
        (its image), a prepared image directory, or None (the image of the
        test's first machine by name). vlans, memory_size and cpus default
        to that model machine's. The machine gets the next node number (its
        VLAN addresses 192.168.<vlan>.<n>; the other machines' /etc/hosts do
        not list it) and is stopped and removed with the run.
        nixpkgs' start_command (a NixOS run-*-vm script or a QEMU command
        line) cannot be run: distrotest builds the QEMU command itself."""
        if start_command is not None:
            raise MachineError(
                f"create_machine({start_command!r}): distrotest cannot run a start command "
                "(a NixOS run-*-vm script or a QEMU command line: the runner builds the QEMU "
                "command itself); create the machine from a prepared image instead: "
                "create_machine(name=..., image=<a machine of the test, or a prepared image "
                "directory>)"
            )
        name = "machine" if name is None else str(name)
        like = ""
        path = ""
        if isinstance(image, Machine):
            like = image.name
        elif image is not None:
            path = os.path.abspath(os.fspath(image))
        res = _rpc(
            "create_machine",
            name=name,
            image=path,
            like=like,
            vlans=None if vlans is None else [int(v) for v in vlans],
            memory_size=int(memory_size or 0),
            cpus=int(cpus or 0),
            keep_machine_state=bool(keep_machine_state),
        )
        return Machine(res["name"], self, res)

    def start_all(self):
        """Start all machines, in parallel."""
        with log.nested("start all VMs"):
            self._each(lambda m: m.start())

    def join_all(self):
        """Wait until all machines have powered off."""
        with log.nested("wait for all VMs to finish"):
            self._each(lambda m: m.wait_for_shutdown())

    def _each(self, fn):
        if len(self.machines) <= 1:
            for m in self.machines:
                fn(m)
            return
        block = _bridge.current_block()

        def run(m):
            with _bridge.in_block(block):
                fn(m)

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.machines)) as ex:
            for f in [ex.submit(run, m) for m in self.machines]:
                f.result()

    def subtest(self, name):
        """A named part of the test: a nested log block and one JUnit test
        case. Use as `with subtest("name"):`."""
        return log.subtest(name)

    def serial_stdout_on(self):
        """Print the machines' serial console lines in the log."""
        log.print_serial_logs(True)

    def serial_stdout_off(self):
        """Stop printing serial console lines in the log."""
        log.print_serial_logs(False)

    def check_polling_conditions(self):
        for c in list(self.polling_conditions):
            c.maybe_raise()

    def polling_condition(self, fun_=None, *, seconds_interval=None, interval=None, description=None):
        """A condition checked (at most every interval, a timedelta or
        seconds, default 2 s; seconds_interval= is the older spelling)
        before every command while its `with` block runs; the test fails
        when it stops holding. Usable as @polling_condition or
        @polling_condition(interval=timedelta(seconds=10), description="...")."""
        driver = self
        every = _one_of("polling_condition", seconds_interval=seconds_interval, interval=interval)
        if every is None:
            every = 2.0

        class Poll:
            def __init__(self, fun):
                self.condition = _PollingCondition(fun, every, description)

            def __enter__(self):
                driver.polling_conditions.append(self.condition)

            def __exit__(self, *exc):
                driver.polling_conditions.remove(self.condition)

            def wait(self, timeout=None, timeout_seconds=None):
                limit = _one_of("wait", timeout=timeout, timeout_seconds=timeout_seconds)

                def ok(last):
                    if last:
                        log.info(f"Last chance for {self.condition.description}")
                    res = self.condition.check(force=True)
                    if not res and not last:
                        log.info(f"({self.condition.description} failure not fatal yet)")
                    return res

                with log.nested(f"waiting for {self.condition.description}"):
                    retry(ok, 900.0 if limit is None else limit)

        if fun_ is None:
            return Poll
        return Poll(fun_)

    def test_script(self):
        """Run the test script."""
        if self._code is None:
            raise MachineError("no test script")
        with log.nested("run the test script"):
            exec(self._code, self.symbols())

    def run_tests(self):
        """Run the test script, then sync the disks of running machines."""
        self.test_script()
        for m in self.machines:
            if m.is_up():
                m.execute("sync")

    def test_symbols(self):
        """The test script's globals (nixpkgs' name for symbols())."""
        return self.symbols()

    def symbols(self):
        """The test script's globals (one dict, shared by test_script and
        the interactive shell)."""
        if self._globals is not None:
            return self._globals
        g = {
            "__name__": "__main__",
            "__file__": self.script_path,
            "__builtins__": __builtins__,
            "start_all": self.start_all,
            "join_all": self.join_all,
            "test_script": self.test_script,
            "run_tests": self.run_tests,
            "machines": self.machines,
            "machines_qemu": self.machines,
            "machines_nspawn": self.machines_nspawn,
            "create_machine": self.create_machine,
            "vlans": self.vlans,
            "driver": self,
            "log": log,
            "os": os,
            "subtest": self.subtest,
            "retry": retry,
            "polling_condition": self.polling_condition,
            "serial_stdout_on": self.serial_stdout_on,
            "serial_stdout_off": self.serial_stdout_off,
            "t": _AssertionTester(),
            "Machine": Machine,
            "BaseMachine": Machine,
            "QemuMachine": Machine,
            "NspawnMachine": NspawnMachine,
            "RequestedAssertionFailed": RequestedAssertionFailed,
            "TestScriptError": TestScriptError,
            "MachineError": MachineError,
        }
        for m in self.machines:
            g[_pythonize_name(m.name)] = m
        if len(self.machines) == 1:
            g["machine"] = self.machines[0]
        for v in self.vlans:
            g[f"vlan{v.nr}"] = v
        self._globals = g
        return g


# --------------------------------------------------------------------------
# The importable `test_driver` package of nixpkgs' scripts: modules made of
# re-exports of this file's objects (the same objects, so that
# `except test_driver.errors.RequestedAssertionFailed` catches what
# succeed() raises).


def _as_timedelta(duration):
    if isinstance(duration, datetime.timedelta):
        return duration
    return datetime.timedelta(seconds=_seconds(duration))


def _install_test_driver_package():
    def module(name, package=False, **attrs):
        m = types.ModuleType(name)
        if package:
            m.__path__ = []
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    errors = module(
        "test_driver.errors",
        TestScriptError=TestScriptError,
        RequestedAssertionFailed=RequestedAssertionFailed,
        MachineError=MachineError,
    )
    qmp = module("test_driver.machine.qmp", QMPSession=QMPSession, QMPAPIError=QMPAPIError)
    machine = module(
        "test_driver.machine",
        package=True,
        Machine=Machine,
        BaseMachine=Machine,
        QemuMachine=Machine,
        NspawnMachine=NspawnMachine,
        retry=retry,
        qmp=qmp,
    )
    polling = module(
        "test_driver.polling_condition",
        PollingCondition=_PollingCondition,
        PollingConditionError=PollingConditionError,
    )
    logger = module("test_driver.logger", LogLevel=LogLevel, AbstractLogger=Logger, CompositeLogger=Logger)
    duration = module(
        "test_driver.duration",
        Duration=datetime.timedelta | int | float,
        as_timedelta=_as_timedelta,
        as_seconds=_seconds,
    )
    driver = module("test_driver.driver", Driver=Driver)
    module(
        "test_driver",
        package=True,
        errors=errors,
        machine=machine,
        polling_condition=polling,
        logger=logger,
        duration=duration,
        driver=driver,
    )


# --------------------------------------------------------------------------
# Failure reports.


_script_file = None  # the compiled script's file name


def _script_frames(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    return [f for f in frames if f.filename == _script_file]


def _script_traceback(exc):
    """The traceback of exc limited to the test script's frames, as lines."""
    frames = _script_frames(exc)
    lines = ["Traceback (most recent call last):"]
    for item in traceback.format_list(frames):
        lines.extend(item.rstrip("\n").split("\n"))
    lines.append("")
    lines.extend(f"{type(exc).__name__}: {exc}".split("\n"))
    return lines


def _report_exception(exc):
    frames = _script_frames(exc)
    last = frames[-1] if frames else None
    _rpc(
        "fail",
        kind="exception",
        type=type(exc).__name__,
        message=str(exc),
        file=last.filename if last else "",
        line=last.lineno if last else 0,
        source=(last.line or "") if last else "",
        traceback=_script_traceback(exc),
    )


def _syntax_report(e, path):
    return {
        "kind": "syntax",
        "type": type(e).__name__,
        "message": e.msg or str(e),
        "file": e.filename or path,
        "line": e.lineno or 0,
        "source": (e.text or "").strip(),
        "traceback": "".join(traceback.format_exception_only(type(e), e)).rstrip("\n").split("\n"),
    }


def _compile(path):
    with open(path, "rb") as f:
        source = f.read()
    return compile(source, path, "exec")


# --------------------------------------------------------------------------
# Entry points.


def _check(path):
    try:
        _compile(path)
    except SyntaxError as e:
        json.dump(_syntax_report(e, path), sys.stdout)
        sys.stdout.write("\n")
        return 2
    except OSError as e:
        print(json.dumps({"kind": "io", "message": str(e), "file": path}))
        return 2
    return 0


def _run():
    global _bridge, _script_file
    _bridge = _Bridge(3)
    hello = _rpc("hello", version=PROTOCOL_VERSION)
    path = hello["test_script"]
    _script_file = path
    try:
        code_obj = _compile(path)
    except SyntaxError as e:
        _rpc("fail", **_syntax_report(e, path))
        return 2
    # Imports next to the script work as with `python3 script.py`.
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    _install_test_driver_package()
    driver = Driver(hello["machines"], hello["vlans"], hello["out_dir"], path, code_obj, hello.get("machine_info"))

    if hello.get("interactive"):
        symbols = driver.symbols()
        names = ", ".join(sorted(k for k in symbols if not k.startswith("__")))
        readline = None
        history = os.path.join(os.getcwd(), ".distrotest-history")
        if sys.stdin.isatty():
            try:
                import readline  # line editing and history
                import rlcompleter

                readline.set_completer(rlcompleter.Completer(symbols).complete)
                readline.parse_and_bind("tab: complete")
                with contextlib.suppress(OSError):
                    readline.read_history_file(history)
            except ImportError:
                readline = None
        banner = (
            "distrotest interactive driver. Machines start when you ask "
            "(start_all(), machine.start()); test_script() runs the script.\n"
            f"Symbols: {names}"
        )
        try:
            code.interact(banner=banner, local=symbols, exitmsg="")
        finally:
            if readline is not None:
                with contextlib.suppress(OSError):
                    readline.write_history_file(history)
        return 0

    try:
        driver.run_tests()
    except SystemExit as e:
        if e.code in (None, 0):
            return 0
        _report_exception(RequestedAssertionFailed(f"the test script exited with {e.code!r}").with_traceback(e.__traceback__))
        return 1
    except BaseException as e:  # noqa: B036 - every failure ends the run the same way
        _report_exception(e)
        return 1
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "check":
        return _check(argv[2])
    if len(argv) == 2 and argv[1] == "run":
        return _run()
    print("usage: distrotest_driver.py run | check SCRIPT (started by `distrotest run`)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    status = main(sys.argv)
    # Do not wait for threads the script left running: the run is over.
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)
