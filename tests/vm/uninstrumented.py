# Uninstrumented images (issue 12): the Debian 13 image booted as it is
# (--no-instrument): the console works, power works, and a shell call fails
# at once saying why.
start_all()
# bounded: a machine that never prints it fails the test instead of hanging CI
machine.wait_for_console_text(r"Debian GNU/Linux 13 \S+ ttyS0", timeout=600)
try:
    machine.succeed("true")
except Exception as e:
    assert "the image is not instrumented, so it has no shell (asked for with --no-instrument)" in str(e), str(e)
else:
    raise AssertionError("a shell call succeeded on an uninstrumented image")
machine.screenshot("uninstrumented")
machine.shutdown()
