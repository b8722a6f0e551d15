# Imports from the driver package, as nixpkgs' own driver tests do.
import test_driver.machine
from test_driver.errors import MachineError, RequestedAssertionFailed
from test_driver.logger import LogLevel
from test_driver.machine import retry as driver_retry
from test_driver.machine.qmp import QMPAPIError
from test_driver.polling_condition import PollingConditionError

try:
    machine.succeed("exit 3")
except RequestedAssertionFailed as e:
    assert "exit code 3" in str(e), e
else:
    raise Exception("succeed() did not raise RequestedAssertionFailed")

assert driver_retry is retry
assert isinstance(machine, test_driver.machine.Machine)

try:
    machine.qmp_client.send("no-such-command")
except QMPAPIError as e:
    assert e.class_name == "CommandNotFound", e.class_name
else:
    raise Exception("an unknown QMP command did not raise QMPAPIError")


@polling_condition(seconds_interval=0)
def never():
    return False


try:
    with never:
        machine.succeed("true")
except PollingConditionError:
    pass
else:
    raise Exception("a failing polling condition did not raise")

try:
    create_machine("qemu-system-x86_64", name="extra")
except MachineError as e:
    assert "cannot run a start command" in str(e), str(e)
else:
    raise Exception("create_machine(start_command) did not say it cannot run it")

log.set_log_level(LogLevel.WARNING)
log.info("compat-hidden-info")
log.warning("compat-shown-warning")
log.set_log_level(LogLevel.INFO)
