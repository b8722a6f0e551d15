# The compatibility suite: test scripts written the way nixpkgs' NixOS tests
# (and nix-vm-test's) are written, run one after the other against one booted
# machine (node "one_two", on vlan 1) so that the suite boots once. Each file
# is a testScript as a nixpkgs user would write it; this runner only gives
# each its own subtest. Run by tests/compat/compat_test.go.
import os

here = os.path.dirname(os.path.abspath(__file__))
machine.start(allow_reboot=True)  # for reboot.py; start_all() below is then a no-op
for name in ["environment.py", "durations.py", "imports.py", "machine_api.py", "create_machine.py", "reboot.py"]:
    path = os.path.join(here, name)
    with subtest(f"compat: {name}"):
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), globals())

machine.shutdown()
