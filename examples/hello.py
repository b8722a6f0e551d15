# An example distrotest test script: the same API as NixOS VM tests.
# Run it with: distrotest run --image debian/13 examples/hello.py
start_all()
machine.wait_for_unit("multi-user.target")

with subtest("the backdoor runs commands and returns their output"):
    out = machine.succeed("cat /etc/os-release")
    assert "Debian" in out, out
    machine.fail("false")
    status, _ = machine.execute("exit 3")
    t.assertEqual(status, 3)

with subtest("a background process does not hang the driver"):
    machine.succeed("sleep 1000 &")

with subtest("systemd units and files"):
    machine.succeed("systemctl is-active distrotest-backdoor.service")
    machine.succeed("echo hello > /root/greeting")
    machine.wait_for_file("/root/greeting")
    t.assertEqual(machine.succeed("cat /root/greeting").strip(), "hello")

machine.shutdown()
