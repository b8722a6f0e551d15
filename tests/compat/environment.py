# The guest environment nixpkgs' test VMs give commands: cwd /tmp, PAGER= and
# DISPLAY=:0.0, a host name derived from the node name, and the 9p shares
# /tmp/shared (one host directory for every machine) and /tmp/xchg.
start_all()
machine.wait_for_unit("multi-user.target")

with subtest("commands run in /tmp"):
    assert machine.succeed("pwd").strip() == "/tmp"
    machine.succeed("echo hello > relative-file")
    machine.succeed("test -e /tmp/relative-file")
    machine.wait_for_file("relative-file")
    # every command starts there again
    machine.succeed("cd /etc")
    assert machine.succeed("pwd").strip() == "/tmp"

with subtest("environment variables"):
    assert machine.succeed('echo "[${PAGER-unset}]"').strip() == "[]"
    assert machine.succeed("echo $DISPLAY").strip() == ":0.0"
    assert machine.succeed("echo $HOME").strip() == "/root"
    assert machine.succeed("echo $USER").strip() == "root"
    # systemctl and journalctl print without a pager
    assert "distrotest backdoor" in machine.succeed("systemctl status distrotest-backdoor.service")

with subtest("the host name is the node name without invalid characters"):
    assert one_two.succeed("hostname").strip() == "onetwo"
    assert "onetwo" in machine.succeed("getent hosts onetwo")
    assert machine.succeed("getent hosts 192.168.1.1").split()[1] == "onetwo"

with subtest("/tmp/shared and /tmp/xchg"):
    machine.succeed("mountpoint -q /tmp/shared", "mountpoint -q /tmp/xchg")
    (machine.shared_dir / "from-host").write_text("hello from the host\n")
    assert machine.succeed("cat /tmp/shared/from-host") == "hello from the host\n"
    machine.succeed("echo hello from the guest > /tmp/shared/from-guest")
    assert (machine.shared_dir / "from-guest").read_text() == "hello from the guest\n"
    machine.succeed("echo x > /tmp/xchg/x && test -s /tmp/xchg/x")
